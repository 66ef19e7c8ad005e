import { poisoned } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import {
  createDecayLinearState,
  decayLinearAppend,
  decayLinearAttention,
  decayLinearAttentionBackward,
  decayLinearAttentionChunked,
  decayLinearAttentionChunkedBackward,
  decayLinearStateSize,
  deserializeDecayLinearState,
  serializeDecayLinearState,
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

function decaySeq(seed: number, T: number, dk: number, dv: number, lo = 0.8) {
  return { ...randomSeq(seed, T, dk, dv), decay: uniform(seed + 1, T, lo, 1) };
}

describe('decayLinearAttentionChunked = decayLinearAttention (outputs, state, gradients)', () => {
  it.each([
    ['T1-d64', 1, 64, 64, 0.8],
    ['T63-d60', 63, 60, 60, 0.8],
    ['T500-d64-decay0.05to1', 500, 64, 64, 0.05],
    ['T1000-d60-dv32', 1000, 60, 32, 0.9],
  ])('%s', (_id, T, dk, dv, lo) => {
    const seq = roundedF64(decaySeq(T + dk, T, dk, dv, lo));
    const config = { scale: 0.25 };
    const ref = decayLinearAttention(seq, config);
    const out = poisoned(T * dv);
    const fast = decayLinearAttentionChunked(toF32(seq), config, { out });
    expect(fast.output).toBe(out);
    assertClose('output', ref.output, fast.output, TOL);
    assertClose('state.kv', ref.state.kv, fast.state.kv, TOL);
    const dOut = randn(createRng(T), T * dv);
    const g = decayLinearAttentionBackward(seq, config, dOut);
    const gf = decayLinearAttentionChunkedBackward(toF32(seq), config, Float32Array.from(dOut));
    assertClose('dq', g.dq, gf.dq, TOL);
    assertClose('dk', g.dk, gf.dk, TOL);
    assertClose('dv', g.dv, gf.dv, TOL);
    // dDecay_0 is exactly 0 from an empty state; the floor keeps T = 1 meaningful.
    assertCloseFloor('dDecay', g.dDecay, gf.dDecay, TOL, T === 1 ? 1 : 0);
  });
});

describe('decay-linear against independent definitions', () => {
  it('decay = 1 is unnormalised linear attention with identity features (T30-d5)', () => {
    const seq = { ...randomSeq(31, 30, 5, 4), decay: new Float64Array(30).fill(1) };
    const y = decayLinearAttention(seq).output;
    const expected = new Float64Array(30 * 4);
    for (let t = 0; t < 30; t++) {
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let i = 0; i < 5; i++) a += seq.q[t * 5 + i] * seq.k[s * 5 + i];
        for (let j = 0; j < 4; j++) expected[t * 4 + j] += a * seq.v[s * 4 + j];
      }
    }
    assertClose('output', expected, y, 1e-12);
  });

  it('closed form y_t = Σ_s (Π_{s<j≤t} a_j)(q_t·k_s) v_s (T25-d4)', () => {
    const seq = decaySeq(32, 25, 4, 3, 0.3);
    const y = decayLinearAttention(seq).output;
    const expected = new Float64Array(25 * 3);
    for (let t = 0; t < 25; t++) {
      for (let s = 0; s <= t; s++) {
        let w = 1;
        for (let j = s + 1; j <= t; j++) w *= seq.decay[j];
        let a = 0;
        for (let i = 0; i < 4; i++) a += seq.q[t * 4 + i] * seq.k[s * 4 + i];
        for (let j = 0; j < 3; j++) expected[t * 3 + j] += w * a * seq.v[s * 3 + j];
      }
    }
    assertClose('output', expected, y, 1e-12);
  });
});

describe('decay-linear streaming, causality, gradients, errors', () => {
  const widths = { q: 6, k: 6, v: 4, decay: 1 };
  it('random splits = one call (T90-d6)', () => {
    const seq = decaySeq(33, 90, 6, 4);
    const whole = decayLinearAttention(seq);
    for (const seed of [1, 2]) {
      const cuts = randomSplits(90, seed);
      const { parts, state } = streamAlternating(
        cuts,
        (a, b) => slice(seq, a, b, widths),
        createDecayLinearState(seq),
        {
          append: decayLinearAppend,
          fast: (piece, state) => decayLinearAttentionChunked(toF32(piece), undefined, { state }),
          roundTrip: (s) => deserializeDecayLinearState(serializeDecayLinearState(s)),
        },
      );
      assertClose('outputs', whole.output, parts, 1e-6);
      assertClose('final kv', whole.state.kv, state.kv, 1e-6);
    }
  });

  it('causality: changing token 20 leaves outputs < 20 unchanged', () => {
    const seq = decaySeq(34, 30, 5, 3);
    const a = decayLinearAttention(seq).output;
    seq.decay[20] = 0.5;
    seq.v[20 * 3] += 1;
    const b = decayLinearAttention(seq).output;
    expect(Array.from(b.slice(0, 60))).toEqual(Array.from(a.slice(0, 60)));
    expect(b[60]).not.toBe(a[60]);
  });

  it('gradients match float64 central differences (T8-d4)', () => {
    const seq = decaySeq(35, 8, 4, 3, 0.4);
    const dOut = randn(createRng(7), 24);
    const cfg = { scale: 0.7 };
    const g = decayLinearAttentionBackward(seq, cfg, dOut);
    const f = () => decayLinearAttention(seq, cfg).output;
    checkGradient('dq', f, dOut, seq.q, g.dq);
    checkGradient('dk', f, dOut, seq.k, g.dk);
    checkGradient('dv', f, dOut, seq.v, g.dv);
    checkGradient('dDecay', f, dOut, seq.decay, g.dDecay);
  });

  it('bad input: clear error, state unchanged; stateSize', () => {
    const seq = decaySeq(36, 10, 6, 4);
    const state = createDecayLinearState(seq);
    decayLinearAppend(state, seq);
    const before = serializeDecayLinearState(state);
    const bad = { ...seq, decay: seq.decay.slice() };
    bad.decay[3] = 1.5;
    expect(() => decayLinearAppend(state, bad)).toThrow(
      'seq.decay: value at index 3 is 1.5; expected values in (0, 1]',
    );
    expect(() => decayLinearAppend(state, { ...seq, decay: seq.decay.slice(1) })).toThrow(
      'seq.decay: has 9 values; expected seqLen = 10',
    );
    expect(serializeDecayLinearState(state)).toBe(before);
    expect(decayLinearStateSize({ keyDim: 64, valueDim: 64 }, {}, 65536)).toBe(4096);
  });
});
