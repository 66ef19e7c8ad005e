import { poisoned } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import {
  createLinearState,
  deserializeLinearState,
  linearAppend,
  linearAttention,
  linearAttentionBackward,
  linearAttentionChunked,
  linearAttentionChunkedBackward,
  linearStateSize,
  serializeLinearState,
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
} from './helpers.js';

const TOL = 1e-5;

describe('linearAttentionChunked = linearAttention (outputs, state, gradients)', () => {
  it.each([
    ['T1-d64', 1, 64, 64],
    ['T63-d60', 63, 60, 60],
    ['T500-d64', 500, 64, 64],
    ['T1000-d60-dv32', 1000, 60, 32],
  ])('%s', (_id, T, dk, dv) => {
    const seq = roundedF64(randomSeq(T + dk, T, dk, dv));
    const ref = linearAttention(seq);
    const out = poisoned(T * dv);
    const fast = linearAttentionChunked(toF32(seq), undefined, { out });
    expect(fast.output).toBe(out);
    assertClose('output', ref.output, fast.output, TOL);
    assertClose('state.kv', ref.state.kv, fast.state.kv, TOL);
    assertClose('state.kSum', ref.state.kSum, fast.state.kSum, TOL);
    const dOut = randn(createRng(T), T * dv);
    const g = linearAttentionBackward(seq, undefined, dOut);
    const gf = linearAttentionChunkedBackward(toF32(seq), undefined, Float32Array.from(dOut));
    // One token: y_0 = v_0 up to eps, so dq, dk vanish by cancellation; judge them against the term scale.
    assertCloseFloor('dq', g.dq, gf.dq, TOL, T === 1 ? 1e-2 : 0);
    assertCloseFloor('dk', g.dk, gf.dk, TOL, T === 1 ? 1e-2 : 0);
    assertClose('dv', g.dv, gf.dv, TOL);
  });
});

describe('linear attention: recurrent reference = parallel form', () => {
  it('T45-d7-dv5: y = (A∘M) V / rowsum(A∘M) with A = φ(Q)φ(K)ᵀ', () => {
    const T = 45;
    const d = 7;
    const e = 5;
    const seq = randomSeq(21, T, d, e);
    const phi = (x: number) => (x > 0 ? x + 1 : Math.exp(x));
    const expected = new Float64Array(T * e);
    for (let t = 0; t < T; t++) {
      let z = 1e-6;
      const row = new Float64Array(e);
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let i = 0; i < d; i++) a += phi(seq.q[t * d + i]) * phi(seq.k[s * d + i]);
        z += a;
        for (let j = 0; j < e; j++) row[j] += a * seq.v[s * e + j];
      }
      for (let j = 0; j < e; j++) expected[t * e + j] = row[j] / z;
    }
    assertClose('output', expected, linearAttention(seq).output, 1e-12);
  });
});

describe('linear attention streaming, causality, gradients, errors', () => {
  it('random splits = one call (T70-d6)', () => {
    const seq = randomSeq(22, 70, 6, 4);
    const whole = linearAttention(seq);
    for (const seed of [1, 2]) {
      const cuts = randomSplits(70, seed);
      const { parts, state } = streamAlternating(
        cuts,
        (a, b) => slice(seq, a, b, { q: 6, k: 6, v: 4 }),
        createLinearState(seq),
        {
          append: linearAppend,
          fast: (piece, state) => linearAttentionChunked(toF32(piece), undefined, { state }),
          roundTrip: (s) => deserializeLinearState(serializeLinearState(s)),
        },
      );
      assertClose('outputs', whole.output, parts, 1e-6);
      assertClose('final kv', whole.state.kv, state.kv, 1e-6);
    }
  });

  it('causality: changing token 20 leaves outputs < 20 unchanged', () => {
    const seq = randomSeq(23, 30, 5, 3);
    const a = linearAttention(seq).output;
    seq.k[20 * 5 + 1] += 1;
    const b = linearAttention(seq).output;
    expect(Array.from(b.slice(0, 60))).toEqual(Array.from(a.slice(0, 60)));
    expect(b[60]).not.toBe(a[60]);
  });

  it('gradients match float64 central differences (T8-d4)', () => {
    const seq = randomSeq(24, 8, 4, 3);
    const dOut = randn(createRng(6), 24);
    const g = linearAttentionBackward(seq, undefined, dOut);
    const f = () => linearAttention(seq).output;
    checkGradient('dq', f, dOut, seq.q, g.dq);
    checkGradient('dk', f, dOut, seq.k, g.dk);
    checkGradient('dv', f, dOut, seq.v, g.dv);
  });

  it('bad input: clear error, state unchanged; stateSize', () => {
    const seq = randomSeq(25, 10, 6, 4);
    const state = createLinearState(seq);
    linearAppend(state, seq);
    const before = serializeLinearState(state);
    expect(() => linearAppend(state, { ...seq, v: seq.v.slice(2) })).toThrow(
      'seq.v: has 38 values; expected seqLen*valueDim = 40',
    );
    expect(() => linearAttention(seq, { eps: -1 })).toThrow(
      'config.eps: got -1; expected a finite number > 0',
    );
    expect(serializeLinearState(state)).toBe(before);
    expect(() =>
      deserializeLinearState(before.replace('"mixer":"linear"', '"mixer":"softmax"')),
    ).toThrow('text.mixer: got "softmax"; expected "linear"');
    expect(linearStateSize({ keyDim: 64, valueDim: 64 }, {}, 65536)).toBe(64 * 64 + 64);
  });
});
