// pnpm --filter @ovq/playground build: the static site in dist/.
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { buildSite } from './bundle.mjs';

const out = await buildSite();
const kib = (f) => (statSync(join(out, f)).size / 1024).toFixed(1);
console.log(
  `playground: wrote ${out} (main.js ${kib('main.js')} KiB); serve it from any static host`,
);
