// Main-thread numbers of the built page in headless Chromium (the test's flags), optionally A/B
// against the playground of another commit, alternated so both see the same machine load:
//   node scripts/measure-main-thread.mjs [runs=3] [baseline-commit]
// Per page load: the autorun's first frame since navigation start and from Run, the longest
// main-thread task during the autorun and since load (PerformanceObserver 'longtask', ≥ 50 ms;
// 0 = none), then one more CPU run of the sample: its first frame, longest task and run time.
// A benchmark: prints JSON lines, asserts nothing.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_WEBGPU_ARGS } from '@ovq/vitest-config/chromium';
import { chromium } from 'playwright-core';
import { rolldown } from 'rolldown';
import { APP, bundleOptions, outputOptions } from './bundle.mjs';
import { serveFolder } from './serve.mjs';

const runs = Number(process.argv[2] ?? 3);
const baseline = process.argv[3];

async function build(src) {
  const out = mkdtempSync(join(tmpdir(), 'ovq-playground-measure-'));
  const b = await rolldown({
    ...bundleOptions(),
    input: { main: join(src, 'main.ts'), worker: join(src, 'worker.ts') },
  });
  await b.write(outputOptions(out, { minify: true }));
  await b.close();
  for (const f of ['index.html', 'styles.css']) copyFileSync(join(src, f), join(out, f));
  return out;
}

const sites = { current: await build(join(APP, 'src')) };
let oldSrc = null;
if (baseline) {
  // Under node_modules/ so the old sources resolve the workspace packages as src/ does.
  oldSrc = join(APP, 'node_modules', '.cache', `measure-${baseline}`);
  rmSync(oldSrc, { recursive: true, force: true });
  mkdirSync(oldSrc, { recursive: true });
  const tar = execFileSync('git', ['archive', baseline, 'src'], { cwd: APP });
  execFileSync('tar', ['-x', '-C', oldSrc], { input: tar });
  sites[baseline] = await build(join(oldSrc, 'src'));
}

for (let i = 0; i < runs; i++) {
  for (const [which, dir] of Object.entries(sites)) {
    const server = await serveFolder(dir);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_WEBGPU_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`http://127.0.0.1:${server.address().port}/`);
      const idle = (n) =>
        page.waitForFunction(
          (n) => {
            const h = globalThis.__ovqPlayground;
            return h && !h.running && (h.runs > n || h.lastError !== null);
          },
          n,
          { timeout: 90_000 },
        );
      await idle(0);
      const a = await page.evaluate(() => ({
        ...globalThis.__ovqPlayground.last,
        sinceLoad: globalThis.__ovqPlayground.longestTaskSinceLoadMs,
      }));
      await page.selectOption('#backend', 'cpu');
      await page.click('#run');
      await idle(1);
      const b = await page.evaluate(() => globalThis.__ovqPlayground.last);
      const r = Math.round;
      console.log(
        JSON.stringify({
          site: which,
          path: a.path,
          firstFrameSinceLoadMs: r(a.firstFrameSinceLoadMs),
          autorunFirstFrameMs: r(a.firstFrameMs),
          autorunLongestTaskMs: r(a.longestTaskMs),
          longestTaskSinceLoadMs: r(a.sinceLoad),
          laterFirstFrameMs: r(b.firstFrameMs),
          laterLongestTaskMs: r(b.longestTaskMs),
          laterTotalMs: r(b.totalMs),
        }),
      );
    } finally {
      await browser.close();
      server.close();
    }
  }
}
for (const dir of Object.values(sites)) rmSync(dir, { recursive: true, force: true });
if (oldSrc) rmSync(oldSrc, { recursive: true, force: true });
