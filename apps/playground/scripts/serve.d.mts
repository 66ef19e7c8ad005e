import type { Server } from 'node:http';

/** Serves `root` on 127.0.0.1:`port` (0 = any free port). */
export function serveFolder(root: string, port?: number): Promise<Server>;
