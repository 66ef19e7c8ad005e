import { ovqKernels, setOvqKernels } from '@ovq/core/kernels';
import { poisoned } from '@ovq/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BaselineInputError,
  createSoftmaxState,
  deserializeSoftmaxState,
  type SoftmaxConfig,
  serializeSoftmaxState,
  softmaxAppend,
  softmaxAttention,
  softmaxAttentionBackward,
  softmaxAttentionTiled,
  softmaxAttentionTiledBackward,
  softmaxStateSize,
} from '../src/index.js';
import {
  assertClose,
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

const cases: Array<[string, number, number, number, SoftmaxConfig]> = [
  ['T1-d64', 1, 64, 64, {}],
  ['T63-d60-normalize', 63, 60, 60, { normalize: true, beta: 8 }],
  ['T500-d64-window100-rope', 500, 64, 64, { window: 100, rope: { base: 10000 } }],
  ['T500-d60-full-rope-normalize', 500, 60, 48, { rope: { base: 500 }, normalize: true, beta: 5 }],
  ['T1000-d64-window64', 1000, 64, 64, { window: 64 }],
];

describe('softmaxAttentionTiled = softmaxAttention (outputs, state, gradients)', () => {
  it.each(cases)('%s', (_id, T, dk, dv, config) => {
    const seq = roundedF64(randomSeq(T * 7 + dk, T, dk, dv));
    const ref = softmaxAttention(seq, config);
    const out = poisoned(T * dv);
    const fast = softmaxAttentionTiled(toF32(seq), config, { out });
    expect(fast.output).toBe(out);
    assertClose('output', ref.output, fast.output, TOL);
    assertClose('state.keys', ref.state.keys, fast.state.keys, TOL);
    assertClose('state.values', ref.state.values, fast.state.values, TOL);
    expect(fast.state.length).toBe(ref.state.length);
    const dOut = randn(createRng(T + 1), T * dv);
    const g = softmaxAttentionBackward(seq, config, dOut);
    const gf = softmaxAttentionTiledBackward(toF32(seq), config, Float32Array.from(dOut));
    assertClose('dq', g.dq, gf.dq, TOL);
    assertClose('dk', g.dk, gf.dk, TOL);
    assertClose('dv', g.dv, gf.dv, TOL);
  });
});

// Both loop sets of the fast path, whatever OVQ_KERNELS says: the WASM-kernel blocks (128 queries
// × 256 keys, so T = 700 after a 300-token cache crosses block edges in queries, keys and the
// cache boundary) and the JS register tiles.
describe.each(['wasm', 'js'] as const)('softmaxAttentionTiled on the %s kernels', (kernels) => {
  const before = ovqKernels();
  const widths24 = { q: 24, k: 24, v: 20 };
  afterAll(() => setOvqKernels(before));
  const cacheCases: Array<[string, SoftmaxConfig]> = [
    ['full', {}],
    ['window200-rope', { window: 200, rope: { base: 1000 }, beta: 2 }],
  ];
  it.each(cacheCases)(
    'after a 300-token cache, T = 700 (%s): outputs, state, gradients',
    (_id, config) => {
      setOvqKernels(kernels);
      expect(ovqKernels()).toBe(kernels);
      const seq = roundedF64(randomSeq(5, 1000, 24, 20));
      const whole = softmaxAttention(seq, config);
      const first = softmaxAttentionTiled(toF32(slice(seq, 0, 300, widths24)), config);
      const out = poisoned(700 * 20);
      const second = softmaxAttentionTiled(toF32(slice(seq, 300, 1000, widths24)), undefined, {
        state: first.state,
        out,
      });
      expect(second.output).toBe(out);
      assertClose('outputs after the cache', whole.output.subarray(300 * 20), second.output, TOL);
      assertClose('final keys', whole.state.keys, second.state.keys, TOL);
      assertClose('final values', whole.state.values, second.state.values, TOL);
      const dOut = randn(createRng(9), 1000 * 20);
      const g = softmaxAttentionBackward(seq, config, dOut);
      const gf = softmaxAttentionTiledBackward(toF32(seq), config, Float32Array.from(dOut));
      assertClose('dq', g.dq, gf.dq, TOL);
      assertClose('dk', g.dk, gf.dk, TOL);
      assertClose('dv', g.dv, gf.dv, TOL);
      setOvqKernels(before);
    },
  );
});

describe('softmaxAttention against independent definitions', () => {
  it('window = ∞ equals a direct T×T masked softmax (T40-d8)', () => {
    const T = 40;
    const d = 8;
    const seq = randomSeq(3, T, d, d);
    const beta = 0.7;
    const { output } = softmaxAttention(seq, { beta });
    const expected = new Float64Array(T * d);
    for (let t = 0; t < T; t++) {
      const w = new Float64Array(T);
      let z = 0;
      for (let s = 0; s < T; s++) {
        let l = 0;
        for (let i = 0; i < d; i++) l += seq.q[t * d + i] * seq.k[s * d + i];
        w[s] = s <= t ? Math.exp(beta * l) : 0;
        z += w[s];
      }
      for (let s = 0; s < T; s++)
        for (let j = 0; j < d; j++) expected[t * d + j] += (w[s] / z) * seq.v[s * d + j];
    }
    assertClose('output', expected, output, 1e-12);
  });

  it('window W equals full attention on the last W tokens only (T30-W5)', () => {
    const seq = randomSeq(4, 30, 6, 5);
    const { output } = softmaxAttention(seq, { window: 5 });
    const t = 20;
    const tail = slice(seq, t - 4, t + 1, { q: 6, k: 6, v: 5 });
    const direct = softmaxAttention(tail, {}).output.slice(4 * 5, 5 * 5);
    assertClose('row 20', direct, output.slice(t * 5, t * 5 + 5), 1e-12);
  });
});

describe('softmax streaming, causality, gradients, errors', () => {
  const config: SoftmaxConfig = { window: 7, rope: { base: 100 }, normalize: true, beta: 3 };
  const widths = { q: 6, k: 6, v: 4 };

  it('random splits = one call (T50-d6, window 7, rope)', () => {
    const seq = randomSeq(11, 50, 6, 4);
    const whole = softmaxAttention(seq, config);
    for (const seed of [1, 2, 3]) {
      const cuts = randomSplits(50, seed);
      const { parts, state } = streamAlternating(
        cuts,
        (a, b) => slice(seq, a, b, widths),
        createSoftmaxState(seq, config),
        {
          append: softmaxAppend,
          fast: (piece, state) => softmaxAttentionTiled(toF32(piece), undefined, { state }),
          roundTrip: (s) => deserializeSoftmaxState(serializeSoftmaxState(s)),
        },
      );
      assertClose(`outputs, cuts ${cuts}`, whole.output, parts, 1e-6);
      assertClose('final keys', whole.state.keys, state.keys, 1e-6);
      expect(state.position).toBe(50);
    }
  });

  it('causality: changing token 30 leaves outputs < 30 unchanged and changes 30', () => {
    const seq = randomSeq(12, 40, 6, 4);
    const a = softmaxAttention(seq, { beta: 2 }).output;
    seq.k[30 * 6] += 1;
    seq.v[30 * 4] += 1;
    const b = softmaxAttention(seq, { beta: 2 }).output;
    expect(Array.from(b.slice(0, 30 * 4))).toEqual(Array.from(a.slice(0, 30 * 4)));
    expect(b[30 * 4]).not.toBe(a[30 * 4]);
  });

  it.each([
    ['plain', {}],
    ['window3-rope-normalize', { window: 3, rope: { base: 10 }, normalize: true, beta: 2 }],
  ] as Array<[string, SoftmaxConfig]>)(
    'gradients match float64 central differences (T9-d4, %s)',
    (_id, cfg) => {
      const seq = randomSeq(13, 9, 4, 3);
      const dOut = randn(createRng(5), 9 * 3);
      const g = softmaxAttentionBackward(seq, cfg, dOut);
      const f = () => softmaxAttention(seq, cfg).output;
      checkGradient('dq', f, dOut, seq.q, g.dq);
      checkGradient('dk', f, dOut, seq.k, g.dk);
      checkGradient('dv', f, dOut, seq.v, g.dv);
    },
  );

  it('bad input: clear error, state unchanged', () => {
    const seq = randomSeq(14, 10, 6, 4);
    const state = createSoftmaxState(seq, config);
    softmaxAppend(state, seq);
    const before = serializeSoftmaxState(state);
    const bad = { ...seq, q: seq.q.slice(1) };
    expect(() => softmaxAppend(state, bad)).toThrow(
      'seq.q: has 59 values; expected seqLen*keyDim = 60',
    );
    const nan = { ...seq, v: seq.v.slice() };
    nan.v[7] = Number.NaN;
    expect(() => softmaxAppend(state, nan)).toThrow(BaselineInputError);
    expect(() =>
      softmaxAppend(state, { ...seq, keyDim: 5, q: seq.q.slice(0, 50), k: seq.k.slice(0, 50) }),
    ).toThrow("seq.keyDim: got 5; expected the state's keyDim 6");
    expect(serializeSoftmaxState(state)).toBe(before);
    expect(() => softmaxAttention(seq, { window: 0 })).toThrow(
      'config.window: got 0; expected an integer ≥ 1',
    );
    expect(() => softmaxAttention(randomSeq(1, 3, 5, 2), { rope: { base: 10 } })).toThrow(
      'even keyDim',
    );
    const tampered = before.replace('"version":1', '"version":2');
    expect(() => deserializeSoftmaxState(tampered)).toThrow(
      'text.version: has version 2; expected 1',
    );
  });

  it('stateSize counts the KV cache (§6)', () => {
    const dims = { keyDim: 64, valueDim: 32 };
    expect(softmaxStateSize(dims, {}, 1000)).toBe(1000 * 96);
    expect(softmaxStateSize(dims, { window: 128 }, 1000)).toBe(128 * 96);
    const seq = randomSeq(1, 300, 64, 32);
    const { state } = softmaxAttention(seq, { window: 128 });
    expect(state.keys.length + state.values.length).toBe(
      softmaxStateSize(dims, { window: 128 }, 300),
    );
  });
});
