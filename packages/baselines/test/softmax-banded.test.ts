// The band loops of sliding-window attention (softmax/banded.ts) against the float64 reference,
// on both of @ovq/core's kernel sets: windows from 1 to the band limit, sequences shorter and
// longer than one query block, a KV cache shorter and longer than the window, every output and
// gradient row written (NaN-poisoned buffers), and the switch to the square blocks just above.
import { ovqKernels, setOvqKernels } from '@ovq/core/kernels';
import { poisoned } from '@ovq/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { softmaxAttention, softmaxAttentionBackward, softmaxAttentionTiled } from '../src/index.js';
import {
  BAND_MAX_WINDOW,
  bandedBackward,
  bandedForward,
  bandQueryBlock,
} from '../src/softmax/banded.js';
import { softmaxAttentionTiledBackward } from '../src/softmax/tiled.js';
import { assertClose, createRng, randn, randomSeq, roundedF64, slice, toF32 } from './helpers.js';

const TOL = 1e-5;

describe.each(['wasm', 'js'] as const)('band loops on the %s kernels', (kernels) => {
  const before = ovqKernels();
  afterAll(() => setOvqKernels(before));

  const cases: Array<[number, number, number, number]> = [
    // [T, W, dk, dv]
    [1, 1, 8, 8],
    [37, 1, 8, 6],
    [40, 2, 12, 8],
    [130, 7, 16, 12],
    [129, 64, 32, 32],
    [300, BAND_MAX_WINDOW, 8, 8],
    [20, 100, 8, 8],
  ];
  it.each(cases)(
    'T %i, W %i (dk %i, dv %i): outputs, lse, gradients vs float64',
    (T, W, dk, dv) => {
      setOvqKernels(kernels);
      expect(ovqKernels()).toBe(kernels);
      const seq = roundedF64(randomSeq(T * 3 + W, T, dk, dv));
      const beta = 0.7;
      const config = { window: W, beta };
      const ref = softmaxAttention(seq, config);
      const f = toF32(seq) as unknown as { q: Float32Array; k: Float32Array; v: Float32Array };
      const out = poisoned(T * dv);
      const lse = poisoned(T);
      bandedForward(f.q, f.k, f.v, T, 0, dk, dv, beta, W, out, lse);
      assertClose('output', ref.output, out, TOL);
      // lse_t = log Σ_s exp(β q_t·k_s) over the window, in float64.
      const lseRef = new Float64Array(T);
      for (let t = 0; t < T; t++) {
        let m = Number.NEGATIVE_INFINITY;
        const s: number[] = [];
        for (let j = Math.max(0, t - W + 1); j <= t; j++) {
          let x = 0;
          for (let c = 0; c < dk; c++) x += seq.q[t * dk + c] * seq.k[j * dk + c];
          s.push(beta * x);
          m = Math.max(m, beta * x);
        }
        lseRef[t] = m + Math.log(s.reduce((a, x) => a + Math.exp(x - m), 0));
      }
      assertClose('lse', lseRef, lse, TOL);
      const dOut = randn(createRng(T + W), T * dv);
      const g = softmaxAttentionBackward(seq, config, dOut);
      const gq = poisoned(T * dk); // overwritten block by block
      const gk = new Float32Array(T * dk);
      const gv = new Float32Array(T * dv);
      bandedBackward(f.q, f.k, f.v, Float32Array.from(dOut), T, dk, dv, beta, W, gq, gk, gv);
      assertClose('dq', g.dq, gq, TOL);
      assertClose('dk', g.dk, gk, TOL);
      assertClose('dv', g.dv, gv, TOL);
      setOvqKernels(before);
    },
  );

  it.each([
    [5, 64],
    [150, 64],
    [40, 3],
  ])('after a %i-token cache, window %i: outputs and state equal one call', (cached, W) => {
    setOvqKernels(kernels);
    const T = 230;
    const widths = { q: 16, k: 16, v: 12 };
    const seq = roundedF64(randomSeq(cached + W, T, 16, 12));
    const config = { window: W, rope: { base: 100 } };
    const whole = softmaxAttention(seq, config);
    const first = softmaxAttentionTiled(toF32(slice(seq, 0, cached, widths)), config);
    const out = poisoned((T - cached) * 12);
    const second = softmaxAttentionTiled(toF32(slice(seq, cached, T, widths)), undefined, {
      state: first.state,
      out,
    });
    assertClose('outputs after the cache', whole.output.subarray(cached * 12), out, TOL);
    assertClose('final keys', whole.state.keys, second.state.keys, TOL);
    assertClose('final values', whole.state.values, second.state.values, TOL);
    setOvqKernels(before);
  });

  it('both sides of the band limit (W = BAND_MAX_WINDOW ± 1, normalize) match the reference', () => {
    setOvqKernels(kernels);
    const T = 400;
    for (const W of [BAND_MAX_WINDOW - 1, BAND_MAX_WINDOW + 1]) {
      const seq = roundedF64(randomSeq(W, T, 8, 8));
      const config = { window: W, normalize: true, beta: 4 };
      const ref = softmaxAttention(seq, config);
      const fast = softmaxAttentionTiled(toF32(seq), config);
      assertClose(`output W ${W}`, ref.output, fast.output, TOL);
      const dOut = randn(createRng(W), T * 8);
      const g = softmaxAttentionBackward(seq, config, dOut);
      const gf = softmaxAttentionTiledBackward(toF32(seq), config, Float32Array.from(dOut));
      assertClose(`dq W ${W}`, g.dq, gf.dq, TOL);
      assertClose(`dk W ${W}`, g.dk, gf.dk, TOL);
      assertClose(`dv W ${W}`, g.dv, gf.dv, TOL);
    }
    setOvqKernels(before);
  });
});

describe('bandQueryBlock', () => {
  it('is a multiple of 4 rows in 16…64 and grows with the window', () => {
    let last = 0;
    for (const W of [1, 8, 16, 17, 32, 64, 100, 128, 256]) {
      const qb = bandQueryBlock(W);
      expect(qb % 4).toBe(0);
      expect(qb).toBeGreaterThanOrEqual(Math.max(16, last));
      expect(qb).toBeLessThanOrEqual(64);
      last = qb;
    }
  });
});
