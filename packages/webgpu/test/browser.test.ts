// The same kernels in headless Chromium (WebGPU through navigator.gpu; SwiftShader on a machine
// without a GPU), driven by playwright-core and served from 127.0.0.1. The page imports the built
// package (dist/) and @ovq/core's built reference through an import map. Chromium absent: skipped
// with a printed reason, except under CI, where it fails.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CHROMIUM, CHROMIUM_WEBGPU_ARGS } from '@ovq/vitest-config/chromium';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import { reportUnavailable } from '@ovq/vitest-config/unavailable';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, '..');
const core = resolve(pkg, '../core');
const present = existsSync(CHROMIUM);
if (!present) reportUnavailable(`[webgpu tests] chromium not found at ${CHROMIUM}`);

const CASE_NAMES = [
  'matmul M63 N60 K64',
  'softmax attention BH3-T63-DK60-DV64',
  'linear attention BH3-T63-DK60-DV64-C7',
  'OVQ forward BH3-T63-DK60-DV64-C7 (outputs, state)',
  'OVQ backward BH3-T63-DK64-DV60-C7 gaussian (all gradients)',
  'OVQ backward BH3-T63-DK64-DV60-C7 ema (all gradients)',
];

/** Builds dist/ of this package and of @ovq/core when missing or older than the sources. */
function ensureBuilt(dir: string): void {
  const dist = join(dir, 'dist', 'index.js');
  const newest = (d: string): number => {
    let t = 0;
    for (const entry of execFileSync('find', [d, '-name', '*.ts'], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)) {
      t = Math.max(t, statSync(entry).mtimeMs);
    }
    return t;
  };
  if (existsSync(dist) && statSync(dist).mtimeMs >= newest(join(dir, 'src'))) return;
  const tsc = resolve(pkg, '../../node_modules/typescript/bin/tsc');
  execFileSync(process.execPath, [tsc, '-p', join(dir, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.html': 'text/html',
  '.map': 'application/json',
};

function serve(): Promise<Server> {
  const roots: Record<string, string> = {
    webgpu: join(pkg, 'dist'),
    core: join(core, 'dist'),
    test: join(here, 'browser'),
  };
  const page = `<!doctype html><meta charset="utf-8"><script type="importmap">${JSON.stringify({
    imports: {
      '@ovq/webgpu': '/webgpu/index.js',
      '@ovq/core': '/core/index.js',
      '@ovq/core/testing': '/core/testing/index.js',
    },
  })}</script><script type="module" src="/test/cases.js"></script>`;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      return;
    }
    const [, root, ...rest] = url.pathname.split('/');
    const base = roots[root];
    const file = base ? resolve(base, rest.join('/')) : '';
    if (!base || !file.startsWith(base) || !existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res
      .writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' })
      .end(readFileSync(file));
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

const suite = present ? describe : describe.skip;
suite('in headless Chromium (navigator.gpu)', () => {
  let server: Server;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    ensureBuilt(core);
    ensureBuilt(pkg);
    server = await serve();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_WEBGPU_ARGS,
    });
    page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page
      .waitForFunction(() => (globalThis as { casesReady?: boolean }).casesReady === true, null, {
        timeout: 30_000,
      })
      .catch((e) => {
        throw new Error(`page did not load: ${errors.join('; ') || e}`);
      });
    const adapter = await page.evaluate(() =>
      (
        globalThis as unknown as {
          runCase(n: string): Promise<{ ok: boolean; value: string; error: string }>;
        }
      ).runCase('adapter'),
    );
    if (!adapter.ok) {
      reportUnavailable(`[webgpu tests] chromium has no WebGPU adapter: ${adapter.error}`);
    } else {
      console.info(`[webgpu tests] chromium adapter: ${adapter.value}`);
    }
  }, SLOW_TEST_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    server?.close();
  });

  it.each(CASE_NAMES)('%s', async (name) => {
    const result = await page.evaluate(
      (n) =>
        (
          globalThis as unknown as { runCase(n: string): Promise<{ ok: boolean; error?: string }> }
        ).runCase(n),
      name,
    );
    expect(result.error ?? '').toBe('');
    expect(result.ok).toBe(true);
  });
});
