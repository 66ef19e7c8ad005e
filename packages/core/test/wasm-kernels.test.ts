// The WASM SIMD kernels: the committed module is the build of wasm/kernels.ts; the matmul kernel
// equals a float64 product; forward outputs, final states and gradients agree with the JS kernels
// and with the float64 reference (RMS ratio ≤ 1e-6); the kernel choice is honoured everywhere.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTape, forwardHead, rowsNeeded } from '../src/chunked/forward.js';
import { HeadWorkspace } from '../src/chunked/head.js';
import { ovqAttention, ovqAttentionBackward } from '../src/chunked/index.js';
import { matmulABt, matmulABtJs } from '../src/chunked/kernels.js';
import { ReadScratch } from '../src/chunked/read.js';
import { ovqAttentionReferenceBackward } from '../src/ovq/backward.js';
import type { OvqConfig } from '../src/ovq/types.js';
import { assertClose, createRng, poisoned, randn, randomSeq } from '../src/testing/index.js';
import { OvqInputError, resolveOvqConfig } from '../src/validate.js';
import { ovqKernels, reserve, scratchBase, setOvqKernels, wasmKernels } from '../src/wasm/simd.js';
import { expectSameState, OPTION_CASES, referenceFor } from './chunked-support.js';

const TOL = 1e-6;
// ∂L/∂β is one scalar summed over every token with cancellation (terms ≫ the total): even the
// JS kernels are 1–2e-6 from the reference on it here, so it gets 1e-5.
const TOL_DBETA = 1e-5;

afterEach(() => setOvqKernels('auto'));

describe('WASM kernels', () => {
  it(
    'the committed module is the build of wasm/kernels.ts',
    () => {
      const script = fileURLToPath(new URL('../scripts/build-wasm.mjs', import.meta.url));
      const text = execFileSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
      expect(text.trim()).toBe('up to date');
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  it('are in use by default here, and setOvqKernels switches and validates', () => {
    expect(ovqKernels()).toBe('wasm');
    setOvqKernels('js');
    expect(ovqKernels()).toBe('js');
    expect(() => setOvqKernels('fast' as 'js')).toThrow(OvqInputError);
    expect(() => setOvqKernels('fast' as 'js')).toThrow(/kernels: got fast; expected 'auto'/);
  });

  it('OVQ_KERNELS=js in the environment selects the JS kernels', async () => {
    vi.stubEnv('OVQ_KERNELS', 'js');
    vi.resetModules();
    const fresh = await import('../src/wasm/simd.js');
    expect(fresh.ovqKernels()).toBe('js');
    vi.unstubAllEnvs();
  });

  it('matmulABt equals a float64 product (strides, gaps, accumulate, odd sizes)', () => {
    const rng = createRng(1);
    for (const [rows, cols, dim] of [
      [4, 64, 64],
      [7, 130, 61],
      [64, 1000, 64],
      [13, 9, 301],
      [1, 250, 64],
      [6, 70, 32],
    ]) {
      const aStride = dim + 3;
      const bStride = dim + 1;
      const oStride = cols + 5;
      const A = Float32Array.from(randn(rng, rows * aStride));
      const B = Float32Array.from(randn(rng, cols * bStride));
      const init = Float32Array.from(randn(rng, rows * oStride));
      for (const accumulate of [false, true]) {
        const expected = new Float64Array(rows * oStride);
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < oStride; i++) {
            let s = accumulate || i >= cols ? init[r * oStride + i] : 0;
            if (i < cols) {
              for (let d = 0; d < dim; d++) s += A[r * aStride + d] * B[i * bStride + d];
            }
            expected[r * oStride + i] = s;
          }
        }
        setOvqKernels('wasm');
        const out = Float32Array.from(init);
        if (!accumulate)
          for (let r = 0; r < rows; r++) out.fill(Number.NaN, r * oStride, r * oStride + cols);
        matmulABt(A, 0, aStride, rows, B, 0, bStride, cols, dim, out, 0, oStride, accumulate);
        assertClose(`wasm ${rows}x${cols}x${dim} acc=${accumulate}`, expected, out, TOL);
        const js = Float32Array.from(init);
        matmulABtJs(A, 0, aStride, rows, B, 0, bStride, cols, dim, js, 0, oStride, accumulate);
        assertClose(`js ${rows}x${cols}x${dim} acc=${accumulate}`, expected, js, TOL);
      }
    }
  });

  it('matmulAB (k-major B) equals a float64 product (row/column tails, strides, accumulate)', () => {
    const rng = createRng(2);
    for (const [rows, cols, dim] of [
      [4, 8, 64],
      [7, 130, 61],
      [64, 1000, 64],
      [13, 9, 301],
      [5, 6, 3],
    ]) {
      const aStride = dim + 3;
      const bStride = cols + 5;
      const oStride = cols + 7;
      const A = Float32Array.from(randn(rng, rows * aStride));
      const B = Float32Array.from(randn(rng, dim * bStride));
      const init = Float32Array.from(randn(rng, rows * oStride));
      for (const accumulate of [false, true]) {
        const expected = Float64Array.from(init);
        for (let r = 0; r < rows; r++) {
          for (let i = 0; i < cols; i++) {
            let s = accumulate ? init[r * oStride + i] : 0;
            for (let d = 0; d < dim; d++) s += A[r * aStride + d] * B[d * bStride + i];
            expected[r * oStride + i] = s;
          }
        }
        setOvqKernels('wasm');
        const w = wasmKernels();
        if (w === null) throw new Error('no WASM kernels');
        const a = 0;
        const b = a + ((A.length + 3) & ~3);
        const o = b + ((B.length + 3) & ~3);
        const heap = reserve(w, (o + init.length) * 4);
        const base = scratchBase() / 4;
        heap.set(A, base + a);
        heap.set(B, base + b);
        const out = Float32Array.from(init);
        if (!accumulate)
          for (let r = 0; r < rows; r++) out.fill(Number.NaN, r * oStride, r * oStride + cols);
        heap.set(out, base + o);
        const ptr = (i: number) => (base + i) * 4;
        w.exports.matmulAB(
          ptr(a),
          aStride,
          rows,
          ptr(b),
          bStride,
          cols,
          dim,
          ptr(o),
          oStride,
          accumulate ? 1 : 0,
        );
        const got = heap.slice(base + o, base + o + init.length);
        assertClose(`matmulAB ${rows}x${cols}x${dim} acc=${accumulate}`, expected, got, TOL);
      }
    }
  });

  it('the WASM-resident dictionary follows each workspace when two heads interleave chunk by chunk', () => {
    // Each forwardHead call reads and absorbs one chunk; the heads take turns (the resident region
    // changes owner every call) and a public-size matmulABt in between writes over scratch. Outputs
    // must equal each head run alone.
    const T = 320;
    const C = 32;
    const config: OvqConfig = { chunkSize: C, capacity: 96, beta: 4 };
    const resolved = resolveOvqConfig(config);
    const seqs = [randomSeq(21, T, 32, 24), randomSeq(22, T, 32, 24)].map((s) => ({
      ...s,
      q: Float32Array.from(s.q),
      k: Float32Array.from(s.k),
      v: Float32Array.from(s.v),
    }));
    setOvqKernels('wasm');
    const alone = seqs.map((s) => ovqAttention(s, config).output);
    const rows = rowsNeeded(resolved, T);
    const heads = seqs.map(() => {
      const ws = new HeadWorkspace(32, 24, resolved, rows);
      ws.reset(resolved);
      return { ws, scratch: new ReadScratch(C, rows, 32, 24), out: poisoned(T * 24) };
    });
    const big = Float32Array.from(randn(createRng(5), 256 * 64));
    const junk = new Float32Array(256 * 256);
    for (let t = 0; t < T; t += C) {
      for (const [h, head] of heads.entries()) {
        const seq = seqs[h];
        const piece = {
          q: seq.q.subarray(t * 32),
          k: seq.k.subarray(t * 32),
          v: seq.v.subarray(t * 24),
        };
        forwardHead(head.ws, head.scratch, piece, 0, 0, C, head.out, t * 24, createTape(1, C));
        matmulABt(big, 0, 64, 256, big, 0, 64, 256, 64, junk, 0, 256, false);
      }
    }
    for (const [h, head] of heads.entries()) {
      assertClose(`head ${h} interleaved vs alone`, alone[h], head.out, 1e-7);
    }
  });

  const cases = OPTION_CASES.filter(([n]) =>
    [
      'default',
      'gaussian',
      'ema0.3',
      'random-gaussian-ema',
      'raw',
      'full',
      'first',
      'log',
    ].includes(n),
  );
  for (const [name, options] of cases) {
    it(`forward, state and gradients: WASM = JS = reference within RMS ${TOL} (${name})`, () => {
      const seq = randomSeq(7, 400, 32, 24);
      const config: OvqConfig = { chunkSize: 32, capacity: 96, beta: 4, ...options };
      const dOutput = randn(createRng(3), 400 * 24);
      const run = (kernels: 'js' | 'wasm') => {
        setOvqKernels(kernels);
        const out = poisoned(400 * 24);
        const f = ovqAttention(seq, config, { out });
        const g = ovqAttentionBackward(seq, config, dOutput, {
          out: { dq: poisoned(400 * 32), dk: poisoned(400 * 32), dv: poisoned(400 * 24) },
        });
        return { f, g };
      };
      const js = run('js');
      const wasm = run('wasm');
      expect(wasm.f.trace).toEqual(js.f.trace);
      assertClose('output wasm vs js', js.f.output, wasm.f.output, TOL);
      expectSameState('state wasm vs js', js.f.state, wasm.f.state, TOL);
      for (const key of ['dq', 'dk', 'dv'] as const) {
        assertClose(`${key} wasm vs js`, js.g[key], wasm.g[key], TOL);
      }
      assertClose('dbeta wasm vs js', [js.g.dbeta], [wasm.g.dbeta], TOL_DBETA);
      const ref = referenceFor(seq, config, wasm.f.trace);
      assertClose('output wasm vs reference', ref.output, wasm.f.output, TOL);
      expectSameState('state wasm vs reference', ref.state, wasm.f.state, TOL);
      const rg = ovqAttentionReferenceBackward(seq, config, dOutput, { replay: wasm.g.trace });
      for (const key of ['dq', 'dk', 'dv'] as const) {
        assertClose(`${key} wasm vs reference`, rg[key], wasm.g[key], TOL);
      }
      assertClose('dbeta wasm vs reference', [rg.dbeta], [wasm.g.dbeta], TOL_DBETA);
    });
  }
});
