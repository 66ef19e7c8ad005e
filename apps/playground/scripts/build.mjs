// pnpm --filter @ovq/playground build: the static site in dist/.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildSite } from './bundle.mjs';

const out = await buildSite();
const js = readdirSync(out).filter((f) => f.endsWith('.js'));
const kib = (js.reduce((n, f) => n + statSync(join(out, f)).size, 0) / 1024).toFixed(1);
console.log(`playground: wrote ${out} (${js.join(', ')}: ${kib} KiB of JavaScript)`);
