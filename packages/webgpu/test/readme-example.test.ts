// The README's Node example works as written: its code block is examples/node.mjs verbatim, and
// that file runs in a child `node` against the built packages (dist/, as a user gets them), on the
// adapter `acquireDevice()` finds after `prepareHeadlessDawn()`. No adapter, or no build: skipped
// with a printed reason, except under CI, where it fails (turbo's test task builds first).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { reportUnavailable } from '@ovq/vitest-config/unavailable';
import { describe, expect, it } from 'vitest';
import { acquireDevice } from '../src/device/acquire.js';
import { prepareHeadlessDawn } from '../src/device/node.js';

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const examplePath = join(pkg, 'examples', 'node.mjs');
const MARKER = '<!-- examples/node.mjs (run by test/readme-example.test.ts) -->';

/** The first ```js block after the marker comment in README.md. */
function readmeBlock(): string {
  const readme = readFileSync(join(pkg, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  if (at < 0)
    throw new Error(`README.md: marker ${MARKER} not found; expected it above the example`);
  const match = /```js\n([\s\S]*?)```/.exec(readme.slice(at));
  if (!match) throw new Error('README.md: no ```js block after the example marker');
  return match[1] as string;
}

/** Newest modification time of any file under `dir`. */
function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) t = Math.max(t, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return t;
}

/** Why the built packages cannot run the example, or '' when they are built and current. */
function buildProblem(): string {
  for (const dir of [pkg, resolve(pkg, '../core')]) {
    const dist = join(dir, 'dist', 'index.js');
    if (!existsSync(dist)) return `${dist} missing`;
    if (statSync(dist).mtimeMs < newest(join(dir, 'src'))) return `${dist} older than src/`;
  }
  return '';
}

/** Why no adapter is available to `acquireDevice()` (the example's call), or ''. */
async function adapterProblem(): Promise<string> {
  await prepareHeadlessDawn();
  try {
    (await acquireDevice()).device.destroy();
    return '';
  } catch (error) {
    return String(error);
  }
}

describe('README Node example', () => {
  it('a missing adapter gives an error that names the fix', async () => {
    // A platform whose WebGPU entry point returns no adapter (what Dawn does without the set-up).
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    const gpu = { requestAdapter: async () => null };
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
    try {
      await expect(acquireDevice()).rejects.toThrow(
        /returned null; expected an adapter\. In Node, call `await prepareHeadlessDawn\(\)`.*see "Node set-up" in @ovq\/webgpu's README/,
      );
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete (globalThis as { navigator?: unknown }).navigator;
    }
  });

  it('is examples/node.mjs verbatim', () => {
    expect(readmeBlock()).toBe(readFileSync(examplePath, 'utf8'));
  });

  it('runs as written and matches @ovq/core on the CPU', async (test) => {
    const build = buildProblem();
    if (build) {
      reportUnavailable(`[webgpu tests] README example needs a build (${build}; run pnpm build)`);
      test.skip();
    }
    const adapter = await adapterProblem();
    if (adapter) {
      reportUnavailable(
        `[webgpu tests] README example: no adapter for acquireDevice(): ${adapter}`,
      );
      test.skip();
    }
    // A clean environment: the example itself must set up Dawn (prepareHeadlessDawn).
    const env = { ...process.env };
    for (const name of ['EGL_PLATFORM', 'VK_ICD_FILENAMES', 'XDG_RUNTIME_DIR']) delete env[name];
    const stdout = execFileSync(process.execPath, [examplePath], {
      cwd: pkg,
      env,
      encoding: 'utf8',
    });
    expect(stdout).toMatch(/^dictionary rows per head: 19, 19$/m);
    expect(stdout).toMatch(/^gradients: dq 3072, dk 3072, dv 3072, dβ -?\d/m);
    const diff = Number(/max \|gpu − cpu\| on head 0: (\S+)/.exec(stdout)?.[1]);
    expect(diff).toBeLessThan(1e-4);
  });
});
