// Runs the ovq-train CLI from its TypeScript sources in a real process (no build step): Vite's
// SSR loader transforms src/main.ts with the @ovq/source condition, as the tests resolve it.
// Used by the process-level tests (real signals, real stdout); argv is passed through.
import { fileURLToPath } from 'node:url';
import { createViteServer } from 'vitest/node';

const conditions = ['@ovq/source', 'module', 'node', 'import', 'default'];
const server = await createViteServer({
  configFile: false,
  root: fileURLToPath(new URL('..', import.meta.url)),
  logLevel: 'silent',
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@ovq/source'] } },
  server: { middlewareMode: true, hmr: false, ws: false, watch: null },
  optimizeDeps: { noDiscovery: true, include: [] },
});
let code = 1;
try {
  const { main } = await server.ssrLoadModule('/src/main.ts');
  code = await main(process.argv.slice(2));
} finally {
  await server.close();
}
process.exitCode = code;
