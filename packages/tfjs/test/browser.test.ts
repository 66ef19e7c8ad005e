// @ovq/tfjs with @tensorflow/tfjs in headless Chromium (driven by playwright-core), on the webgpu
// backend (navigator.gpu; SwiftShader on a machine without a GPU) and the cpu backend. The page
// (test/browser/page.ts) is bundled from the TypeScript sources with rolldown (`@ovq/source`
// condition) once per run and served from 127.0.0.1; the float64 references are computed here.
// Chromium absent, or without a WebGPU adapter: skipped with a printed reason, except under CI,
// where it fails.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as baselines from '@ovq/baselines';
import {
  ovqAttentionReference as coreOvq,
  ovqAttentionReferenceBackward as coreOvqBackward,
} from '@ovq/core';
import { assertClose, createRng } from '@ovq/core/testing';
import { CHROMIUM, CHROMIUM_WEBGPU_ARGS } from '@ovq/vitest-config/chromium';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import { reportUnavailable } from '@ovq/vitest-config/unavailable';
import { type Browser, chromium, type Page } from 'playwright-core';
import { rolldown } from 'rolldown';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PageApi } from './browser/page.js';
import {
  CLASSES,
  type Dims,
  type MixerRequest,
  type MixerResult,
  type ModelRequest,
  type ModelResult,
  VOCAB,
} from './browser/protocol.js';
import { perHeadReference, type Reference, randomMixerInputs } from './browser/reference.js';

const here = dirname(fileURLToPath(import.meta.url));
const present = existsSync(CHROMIUM);

/** Under CI a missing browser or adapter is a failure; elsewhere a printed skip. */
const unavailable = (what: string) => reportUnavailable(`[ovq/tfjs browser] ${what}`);
if (!present) unavailable(`chromium not found at ${CHROMIUM}`);

const TOL = 1e-4;
const DIMS: Dims = [2, 2, 37, 6, 5];
const OVQ_CONFIG = { chunkSize: 8, capacity: 12 };
const BETA = [0.7, 1.6];
const SWA_CONFIG = { window: 5, rope: { base: 10000 }, normalize: true, beta: 2 };

/** Bundles test/browser/page.ts (sources of @ovq/* through `@ovq/source`) into `dir`. */
async function bundlePage(dir: string): Promise<void> {
  const bundle = await rolldown({
    input: join(here, 'browser', 'page.ts'),
    platform: 'browser',
    resolve: {
      conditionNames: ['@ovq/source', 'import', 'browser', 'default'],
      extensionAlias: { '.js': ['.ts', '.js'] },
    },
  });
  await bundle.write({ file: join(dir, 'page.js'), format: 'esm' });
  await bundle.close();
}

function serve(dir: string): Promise<Server> {
  const html =
    '<!doctype html><meta charset="utf-8"><script type="module" src="/page.js"></script>';
  const server = createServer((req, res) => {
    if (req.url === '/') res.writeHead(200, { 'content-type': 'text/html' }).end(html);
    else if (req.url === '/page.js')
      res
        .writeHead(200, { 'content-type': 'text/javascript' })
        .end(readFileSync(join(dir, 'page.js')));
    else res.writeHead(404).end();
  });
  return new Promise((ok) => server.listen(0, '127.0.0.1', () => ok(server)));
}

function ovqReference(x: ReturnType<typeof randomMixerInputs>): Reference {
  return perHeadReference(DIMS, x, (seq, h, dOut) => {
    const config = { ...OVQ_CONFIG, beta: BETA[h] };
    const g = coreOvqBackward(seq, config, dOut);
    return { output: coreOvq(seq, config).output, dq: g.dq, dk: g.dk, dv: g.dv, dbeta: g.dbeta };
  });
}

function swaReference(x: ReturnType<typeof randomMixerInputs>): Reference {
  return perHeadReference(DIMS, x, (seq, _h, dOut) => ({
    output: baselines.softmaxAttention(seq, SWA_CONFIG).output,
    ...baselines.softmaxAttentionBackward(seq, SWA_CONFIG, dOut),
  }));
}

function expectMatches(name: string, ref: Reference, got: MixerResult, withBeta: boolean): void {
  assertClose(`${name} output`, ref.output, got.output, TOL);
  assertClose(`${name} dq`, ref.dq, got.grads[0], TOL);
  assertClose(`${name} dk`, ref.dk, got.grads[1], TOL);
  assertClose(`${name} dv`, ref.dv, got.grads[2], TOL);
  if (withBeta) assertClose(`${name} dβ`, ref.dbeta, got.grads[3], TOL);
  expect(got.grads).toHaveLength(withBeta ? 4 : 3);
  expect(got.leaked).toBe(0);
}

describe.skipIf(!present)('@ovq/tfjs with @tensorflow/tfjs in headless Chromium', () => {
  let dir: string;
  let server: Server;
  let browser: Browser;
  let page: Page;
  let noWebGpu: string | null = null;

  const call = <K extends keyof PageApi>(name: K, ...args: Parameters<PageApi[K]>) =>
    page.evaluate(
      ([n, a]) => {
        const api = (
          globalThis as unknown as { ovqTfjs: Record<string, (...args: unknown[]) => unknown> }
        ).ovqTfjs;
        return api[n as string](...(a as unknown[]));
      },
      [name, args] as const,
    ) as ReturnType<PageApi[K]>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ovq-tfjs-browser-'));
    await bundlePage(dir);
    server = await serve(dir);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: CHROMIUM_WEBGPU_ARGS,
    });
    page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
    await page
      .waitForFunction(() => 'ovqTfjs' in globalThis, null, { timeout: 30_000 })
      .catch((e) => {
        throw new Error(`page did not load: ${errors.join('; ') || e}`);
      });
    const adapter = await call('adapterInfo');
    noWebGpu = adapter === null ? 'chromium offers no WebGPU adapter' : null;
    if (noWebGpu) unavailable(noWebGpu);
    else console.info(`[ovq/tfjs browser] chromium adapter: ${adapter}`);
  }, SLOW_TEST_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
    server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ovqInputs = randomMixerInputs(11, DIMS);
  const swaInputs = randomMixerInputs(12, DIMS);

  describe.each(['webgpu', 'cpu'])('on the %s backend', (backend) => {
    beforeAll(async () => {
      if (backend === 'webgpu' && noWebGpu) return;
      expect(await call('useBackend', backend)).toBeNull();
    });

    it(`ovqAttention matches @ovq/core (output, tf.grads for q, k, v, β), no leaks — B2-H2-T37-dk6-dv5 C8 N12`, async (ctx) => {
      if (backend === 'webgpu' && noWebGpu) ctx.skip(noWebGpu);
      const request: MixerRequest = {
        op: 'ovqAttention',
        dims: DIMS,
        ...ovqInputs,
        beta: BETA,
        config: OVQ_CONFIG,
      };
      const got = await call('runMixer', request);
      expect(got.backend).toBe(backend);
      expectMatches(`ovq ${backend}`, ovqReference(ovqInputs), got, true);
    });

    it('softmaxAttention (SWA W5 + RoPE + normalise) matches @ovq/baselines (output, tf.grads), no leaks', async (ctx) => {
      if (backend === 'webgpu' && noWebGpu) ctx.skip(noWebGpu);
      const request: MixerRequest = {
        op: 'softmaxAttention',
        dims: DIMS,
        ...swaInputs,
        config: SWA_CONFIG,
      };
      const got = await call('runMixer', request);
      expect(got.backend).toBe(backend);
      expectMatches(`swa ${backend}`, swaReference(swaInputs), got, false);
    });

    it('model (embedding → SWA → OVQ → dense): an Adam step changes every weight and leaks nothing; IndexedDB save → load restores every weight bitwise and gives the same outputs', async (ctx) => {
      if (backend === 'webgpu' && noWebGpu) ctx.skip(noWebGpu);
      const rng = createRng(13);
      const [batch, seqLen] = [2, 11];
      const request: ModelRequest = {
        batch,
        seqLen,
        tokens: Array.from({ length: batch * seqLen }, () => Math.floor(rng() * VOCAB)),
        targets: Array.from({ length: batch * seqLen }, () => Math.floor(rng() * CLASSES)),
      };
      const got: ModelResult = await call('runModel', request);
      expect(got.backend).toBe(backend);
      expect(got.predicted).toHaveLength(batch * seqLen * CLASSES);
      expect(got.predicted.every(Number.isFinite)).toBe(true);
      expect(got.notRestored).toEqual([]);
      if (backend === 'cpu') expect(got.predictedByLoaded).toEqual(got.predicted);
      // tfjs-backend-webgpu runs small element-wise ops on the CPU while their inputs still live
      // there (WEBGPU_CPU_FORWARD): freshly loaded weights take that route, trained ones the GPU's
      // shaders, so the outputs differ in the last bits. With that flag off they are bitwise
      // equal; the weights themselves are bitwise equal either way (checked above).
      else assertClose('loaded model on webgpu', got.predicted, got.predictedByLoaded, 1e-6);
      expect(got.loadedLayerConfigs).toEqual(got.layerConfigs);
      expect(got.layerConfigs.map((c) => JSON.parse(c).class)).toEqual([
        'InputLayer',
        'Embedding',
        'SoftmaxAttention',
        'Add',
        'OvqAttention',
        'Add',
        'Dense',
      ]);
      expect(got.trainableWeights.length).toBeGreaterThan(8);
      expect(got.unchangedByStep).toEqual([]);
      expect(got.leakedByStep).toBe(0);
      expect(got.leaked).toBe(0);
    });
  });
});
