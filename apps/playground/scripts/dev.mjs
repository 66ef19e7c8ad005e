// pnpm --filter @ovq/playground dev: rebuilds the site whenever a source changes (rolldown
// watch, sources of the workspace packages included) into node_modules/.cache/playground-dev/
// (out of the way of lint and git, like other tools' caches) and serves it on
// http://127.0.0.1:5173 (PORT overrides). Reload the page after a rebuild.
import { mkdirSync, rmSync, watch as watchFolder } from 'node:fs';
import { join } from 'node:path';
import { watch } from 'rolldown';
import { APP, bundleOptions, copyStatic, outputOptions } from './bundle.mjs';
import { serveFolder } from './serve.mjs';

const out = join(APP, 'node_modules', '.cache', 'playground-dev');
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
copyStatic(out);
watchFolder(join(APP, 'src'), (_event, name) => {
  if (name && /\.(html|css)$/.test(name)) copyStatic(out);
});
const watcher = watch({
  ...bundleOptions(),
  output: outputOptions(out),
});
watcher.on('event', (event) => {
  if (event.code === 'BUNDLE_END') {
    console.log(`playground: rebuilt in ${event.duration} ms`);
    event.result?.close();
  } else if (event.code === 'ERROR') {
    console.error(`playground: build error: ${event.error?.message ?? event.error}`);
    event.result?.close();
  }
});
const port = Number(process.env.PORT ?? 5173);
await serveFolder(out, port);
console.log(`playground: http://127.0.0.1:${port}/ (Ctrl+C to stop)`);
