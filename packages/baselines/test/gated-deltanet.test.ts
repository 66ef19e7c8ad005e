import { poisoned } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import {
  createGatedDeltaNetState,
  deserializeGatedDeltaNetState,
  gatedDeltaNet,
  gatedDeltaNetAppend,
  gatedDeltaNetBackward,
  gatedDeltaNetChunked,
  gatedDeltaNetChunkedBackward,
  gatedDeltaNetStateSize,
  serializeGatedDeltaNetState,
} from '../src/index.js';
import {
  assertClose,
  assertCloseFloor,
  checkGradient,
  createRng,
  randn,
  randomSeq,
  randomSplits,
  roundedF64,
  slice,
  streamAlternating,
  toF32,
  uniform,
} from './helpers.js';

const TOL = 1e-5;

function gdnSeq(seed: number, T: number, dk: number, dv: number, alphaLo = 0.85) {
  return {
    ...randomSeq(seed, T, dk, dv),
    alpha: uniform(seed + 1, T, alphaLo, 1),
    beta: uniform(seed + 2, T, 0.05, 1),
  };
}

describe('gatedDeltaNetChunked = gatedDeltaNet (outputs, state, gradients)', () => {
  it.each([
    ['T1-d64', 1, 64, 64, 0.85],
    ['T63-d60', 63, 60, 60, 0.85],
    ['T500-d64-alpha0.2to1', 500, 64, 64, 0.2],
    ['T1000-d60-dv32', 1000, 60, 32, 0.9],
  ])('%s', (_id, T, dk, dv, lo) => {
    const seq = roundedF64(gdnSeq(T + dk, T, dk, dv, lo));
    const ref = gatedDeltaNet(seq);
    const out = poisoned(T * dv);
    const fast = gatedDeltaNetChunked(toF32(seq), undefined, { out });
    expect(fast.output).toBe(out);
    assertClose('output', ref.output, fast.output, TOL);
    assertClose('state.kv', ref.state.kv, fast.state.kv, TOL);
    const dOut = randn(createRng(T), T * dv);
    const g = gatedDeltaNetBackward(seq, undefined, dOut);
    const gf = gatedDeltaNetChunkedBackward(toF32(seq), undefined, Float32Array.from(dOut));
    assertClose('dq', g.dq, gf.dq, TOL);
    assertClose('dk', g.dk, gf.dk, TOL);
    assertClose('dv', g.dv, gf.dv, TOL);
    // dα_0 is exactly 0 from an empty state; the floor keeps T = 1 meaningful.
    assertCloseFloor('dAlpha', g.dAlpha, gf.dAlpha, TOL, T === 1 ? 1 : 0);
    assertClose('dBeta', g.dBeta, gf.dBeta, TOL);
  });
});

describe('Gated DeltaNet against the textbook recurrence', () => {
  it('S_t = α S(I − β k̂k̂ᵀ) + β v k̂ᵀ with explicit matrices, y = S q̂/√d (T40-d6-dv5)', () => {
    const T = 40;
    const d = 6;
    const e = 5;
    const seq = gdnSeq(41, T, d, e, 0.5);
    const unit = (x: Float64Array, o: number) => {
      const r = Array.from(x.slice(o, o + d));
      const n = Math.hypot(...r);
      return r.map((a) => a / n);
    };
    let S = Array.from({ length: e }, () => new Array<number>(d).fill(0)); // value-major [dv][dk]
    const expected = new Float64Array(T * e);
    for (let t = 0; t < T; t++) {
      const k = unit(seq.k, t * d);
      const q = unit(seq.q, t * d);
      const a = seq.alpha[t];
      const b = seq.beta[t];
      const P = k.map((ki, i) => k.map((kj, j) => (i === j ? 1 : 0) - b * ki * kj));
      S = S.map((row, r) =>
        k.map(
          (_, j) =>
            a * row.reduce((acc, x, i) => acc + x * P[i][j], 0) + b * seq.v[t * e + r] * k[j],
        ),
      );
      for (let r = 0; r < e; r++)
        expected[t * e + r] = S[r].reduce((acc, x, i) => acc + x * q[i], 0) / Math.sqrt(d);
    }
    assertClose('output', expected, gatedDeltaNet(seq).output, 1e-12);
  });

  it('chunked float32 = per-token recurrence across several chunks with extreme gates (T300-d16)', () => {
    const seq = roundedF64({
      ...randomSeq(42, 300, 16, 8),
      alpha: uniform(43, 300, 0.01, 1),
      beta: uniform(44, 300, 0, 2),
    });
    assertClose('output', gatedDeltaNet(seq).output, gatedDeltaNetChunked(toF32(seq)).output, TOL);
  });
});

describe('Gated DeltaNet streaming, causality, gradients, errors', () => {
  const widths = { q: 6, k: 6, v: 4, alpha: 1, beta: 1 };
  it('random splits = one call (T150-d6)', () => {
    const seq = gdnSeq(45, 150, 6, 4);
    const whole = gatedDeltaNet(seq);
    for (const seed of [1, 2]) {
      const cuts = randomSplits(150, seed);
      const { parts, state } = streamAlternating(
        cuts,
        (a, b) => slice(seq, a, b, widths),
        createGatedDeltaNetState(seq),
        {
          append: gatedDeltaNetAppend,
          fast: (piece, state) => gatedDeltaNetChunked(toF32(piece), undefined, { state }),
          roundTrip: (s) => deserializeGatedDeltaNetState(serializeGatedDeltaNetState(s)),
        },
      );
      assertClose('outputs', whole.output, parts, 1e-6);
      assertClose('final kv', whole.state.kv, state.kv, 1e-6);
    }
  });

  it('causality: changing token 20 leaves outputs < 20 unchanged', () => {
    const seq = gdnSeq(46, 30, 5, 3);
    const a = gatedDeltaNet(seq).output;
    seq.beta[20] = 0.9;
    seq.k[20 * 5] += 1;
    const b = gatedDeltaNet(seq).output;
    expect(Array.from(b.slice(0, 60))).toEqual(Array.from(a.slice(0, 60)));
    expect(b[60]).not.toBe(a[60]);
  });

  it('gradients match float64 central differences (T8-d4)', () => {
    const seq = gdnSeq(47, 8, 4, 3, 0.4);
    const dOut = randn(createRng(8), 24);
    const cfg = { scale: 0.9 };
    const g = gatedDeltaNetBackward(seq, cfg, dOut);
    const f = () => gatedDeltaNet(seq, cfg).output;
    checkGradient('dq', f, dOut, seq.q, g.dq);
    checkGradient('dk', f, dOut, seq.k, g.dk);
    checkGradient('dv', f, dOut, seq.v, g.dv);
    checkGradient('dAlpha', f, dOut, seq.alpha, g.dAlpha);
    checkGradient('dBeta', f, dOut, seq.beta, g.dBeta);
  });

  it('bad input: clear error, state unchanged; stateSize', () => {
    const seq = gdnSeq(48, 10, 6, 4);
    const state = createGatedDeltaNetState(seq);
    gatedDeltaNetAppend(state, seq);
    const before = serializeGatedDeltaNetState(state);
    const bad = { ...seq, beta: seq.beta.slice() };
    bad.beta[9] = -0.1;
    expect(() => gatedDeltaNetAppend(state, bad)).toThrow(
      'seq.beta: value at index 9 is -0.1; expected values in [0, 2]',
    );
    const bad2 = { ...seq, alpha: seq.alpha.slice() };
    bad2.alpha[0] = 0;
    expect(() => gatedDeltaNetAppend(state, bad2)).toThrow(
      'seq.alpha: value at index 0 is 0; expected values in (0, 1]',
    );
    expect(serializeGatedDeltaNetState(state)).toBe(before);
    expect(gatedDeltaNetStateSize({ keyDim: 64, valueDim: 64 }, {}, 65536)).toBe(4096);
  });
});
