// Small decays: the fast gradients of the decay (decay-linear) and gate (Gated DeltaNet) must stay
// within RMS 1e-5 of the float64 reference down to a = 1e-6. The old fast decay gradient divided
// Σ(q·dq − k·dk) (a difference of O(1) terms) by a_t and was off by 1e-3 at a = 1e-4.
import { describe, expect, it } from 'vitest';
import {
  decayLinearAttention,
  decayLinearAttentionBackward,
  decayLinearAttentionChunkedBackward,
  gatedDeltaNet,
  gatedDeltaNetBackward,
  gatedDeltaNetChunkedBackward,
} from '../src/index.js';
import { assertClose, createRng, dot, randn, randomSeq, roundedF64, toF32 } from './helpers.js';

const TOL = 1e-5;

/** Per-token decays: a constant, or log-uniform in [1e-6, 1] ('mixed'). */
function decays(seed: number, T: number, a: number | 'mixed'): Float64Array {
  if (a !== 'mixed') return new Float64Array(T).fill(a);
  const rng = createRng(seed);
  return Float64Array.from({ length: T }, () => 10 ** (-6 * rng()));
}

/**
 * Float64 central differences along each decay with a step of half that decay (the loss is affine
 * in each single a_t, so the quotient is exact up to rounding, and a_t ± h stays in (0, 1]).
 */
function decayDifferences(loss: () => number, a: Float64Array): Float64Array {
  const g = new Float64Array(a.length);
  for (let t = 0; t < a.length; t++) {
    const saved = a[t];
    const h = 0.5 * Math.min(saved, 1 - saved);
    a[t] = saved + h;
    const plus = loss();
    a[t] = saved - h;
    const minus = loss();
    a[t] = saved;
    g[t] = (plus - minus) / (2 * h);
  }
  return g;
}

describe('decay-linear: fast dDecay for small decays', () => {
  it('T = 2, dk = dv = 1, decay 1e-3: dDecay = [0, dOut_1·q_1·k_0·v_0] exactly', () => {
    const seq = {
      q: Float64Array.of(0.3, -0.7),
      k: Float64Array.of(0.9, 0.4),
      v: Float64Array.of(1.1, -0.6),
      seqLen: 2,
      keyDim: 1,
      valueDim: 1,
      decay: Float64Array.of(1e-3, 1e-3),
    };
    const dOut = Float64Array.of(0.8, -1.3);
    // S_{-1} = 0, so dDecay_0 = 0; dDecay_1 = ⟨G_1, S_0⟩ = dOut_1·q_1·(k_0 v_0) = 0.9009.
    const exact = [0, -1.3 * -0.7 * (0.9 * 1.1)];
    const ref = decayLinearAttentionBackward(seq, undefined, dOut).dDecay;
    const fast = decayLinearAttentionChunkedBackward(toF32(seq), undefined, dOut).dDecay;
    expect(ref[0]).toBe(0);
    expect(ref[1]).toBeCloseTo(exact[1], 14);
    expect(Math.abs(fast[0])).toBeLessThan(1e-12);
    expect(Math.abs(fast[1] - exact[1]) / exact[1]).toBeLessThan(1e-6);
  });

  it.each([
    [64, 1e-3],
    [64, 1e-4],
    [64, 1e-6],
    [64, 'mixed'],
    [200, 1e-3],
    [200, 1e-4],
    [200, 1e-6],
    [200, 'mixed'],
  ] as const)('T = %i, decay %s: fast = reference = central differences', (T, a) => {
    const dk = 6;
    const dv = 5;
    const seed = T + (a === 'mixed' ? 7 : Math.round(-Math.log10(a)));
    const seq = roundedF64({ ...randomSeq(seed, T, dk, dv), decay: decays(seed, T, a) });
    const dOut = Float64Array.from(Float32Array.from(randn(createRng(seed + 1), T * dv)));
    const g = decayLinearAttentionBackward(seq, undefined, dOut);
    const gf = decayLinearAttentionChunkedBackward(toF32(seq), undefined, dOut);
    assertClose('dDecay', g.dDecay, gf.dDecay, TOL);
    assertClose('dq', g.dq, gf.dq, TOL);
    assertClose('dk', g.dk, gf.dk, TOL);
    assertClose('dv', g.dv, gf.dv, TOL);
    const fd = decayDifferences(
      () => dot(dOut, decayLinearAttention(seq, undefined).output),
      seq.decay,
    );
    assertClose('dDecay vs central differences', fd, g.dDecay, 1e-6);
  });
});

describe('Gated DeltaNet: fast dAlpha for small gates (no division by α: per-token replay)', () => {
  it.each([
    [64, 1e-3],
    [64, 1e-6],
    [200, 1e-4],
    [200, 'mixed'],
  ] as const)('T = %i, alpha %s: fast = reference = central differences', (T, a) => {
    const dk = 6;
    const dv = 5;
    const seed = 3 * T + (a === 'mixed' ? 7 : Math.round(-Math.log10(a)));
    const rng = createRng(seed + 2);
    const seq = roundedF64({
      ...randomSeq(seed, T, dk, dv),
      alpha: decays(seed, T, a),
      beta: Float64Array.from({ length: T }, () => 0.2 + 1.5 * rng()),
    });
    const dOut = Float64Array.from(Float32Array.from(randn(createRng(seed + 1), T * dv)));
    const g = gatedDeltaNetBackward(seq, undefined, dOut);
    const gf = gatedDeltaNetChunkedBackward(toF32(seq), undefined, dOut);
    assertClose('dAlpha', g.dAlpha, gf.dAlpha, TOL);
    assertClose('dBeta', g.dBeta, gf.dBeta, TOL);
    const fd = decayDifferences(() => dot(dOut, gatedDeltaNet(seq).output), seq.alpha);
    assertClose('dAlpha vs central differences', fd, g.dAlpha, 1e-6);
  });
});
