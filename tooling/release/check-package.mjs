// Release checks publint and attw cannot make, run by each published package's `lint` from its
// folder: the exports users get (`publishConfig.exports`, which pnpm publishes in place of
// `exports`) are the workspace's exports without the `@ovq/source` condition, so nothing
// published points at TypeScript sources; a LICENSE ships; the repository fields are real; and
// every entry point loads through CommonJS `require()` (the README's CommonJS story: Node's
// require of ES modules, unflagged from 20.19 / 22.12; top-level await would break it).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { relative, resolve } from 'node:path';

const SOURCE_CONDITION = '@ovq/source';
const root = resolve(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '../..');
const dir = process.cwd();
const pkg = JSON.parse(readFileSync(resolve(dir, 'package.json'), 'utf8'));
const problems = [];

/** The exports map with the workspace-only condition removed at every level. */
function withoutSource(entry) {
  if (typeof entry !== 'object' || entry === null) return entry;
  return Object.fromEntries(
    Object.entries(entry)
      .filter(([key]) => key !== SOURCE_CONDITION)
      .map(([key, value]) => [key, withoutSource(value)]),
  );
}

const expected = JSON.stringify(withoutSource(pkg.exports));
const published = JSON.stringify(pkg.publishConfig?.exports);
if (published !== expected) {
  problems.push(
    `publishConfig.exports is ${published}; expected the exports map without "${SOURCE_CONDITION}": ${expected}`,
  );
}
if (published?.includes(SOURCE_CONDITION) || published?.includes('./src/')) {
  problems.push(`publishConfig.exports points at sources (${published}); expected ./dist only`);
}
if (!existsSync(resolve(dir, 'LICENSE'))) problems.push('LICENSE: missing; expected the MIT text');
const directory = relative(root, dir);
if (pkg.repository?.directory !== directory) {
  problems.push(`repository.directory is ${pkg.repository?.directory}; expected "${directory}"`);
}
for (const field of ['repository', 'homepage', 'bugs']) {
  const text = JSON.stringify(pkg[field] ?? '');
  if (!text.includes('https://')) problems.push(`${field}: is ${text}; expected an https URL`);
  if (text.includes('.invalid')) problems.push(`${field}: is ${text}; expected a real host`);
}

// `changeset version` refuses a changeset that names both an ignored package (the private apps)
// and a published one: this package's changesets must name published packages only.
const changesetDir = resolve(root, '.changeset');
const ignored = new Set(
  JSON.parse(readFileSync(resolve(changesetDir, 'config.json'), 'utf8')).ignore ?? [],
);
for (const file of readdirSync(changesetDir).filter((f) => f.endsWith('.md'))) {
  const front = readFileSync(resolve(changesetDir, file), 'utf8').match(/^---\n([\s\S]*?)\n---/);
  const named = [...(front?.[1] ?? '').matchAll(/^["']?(@[^"':]+)["']?\s*:/gm)].map((m) => m[1]);
  const mixed = named.filter((name) => ignored.has(name));
  if (named.includes(pkg.name) && mixed.length > 0)
    problems.push(
      `.changeset/${file} names ${pkg.name} and the ignored ${mixed.join(', ')}; expected published packages only (changeset version refuses the mix)`,
    );
}

if (process.features.require_module) {
  // Self-reference by name: resolves through `exports` with the require conditions, to dist/.
  const require = createRequire(resolve(dir, 'package.json'));
  for (const subpath of Object.keys(pkg.exports ?? {})) {
    if (subpath.endsWith('.json')) continue;
    const specifier = `${pkg.name}${subpath.slice(1)}`;
    try {
      require(specifier);
    } catch (error) {
      problems.push(
        `require('${specifier}') failed (${error.code ?? error}); build first, and keep entry points free of top-level await`,
      );
    }
  }
} else {
  console.warn(
    `${pkg.name}: Node ${process.version} cannot require() ES modules; CommonJS load not checked`,
  );
}

if (problems.length > 0) {
  console.error(`${pkg.name}: release check failed\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(
  `${pkg.name}: published exports, LICENSE, repository fields, changesets and require() of every entry point are fine`,
);
