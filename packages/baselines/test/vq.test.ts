import { poisoned } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import {
  createVqState,
  deserializeVqState,
  serializeVqState,
  softmaxAttention,
  type VqConfig,
  vqAppend,
  vqAttention,
  vqAttentionBackward,
  vqAttentionBlocked,
  vqAttentionBlockedBackward,
  vqStateSize,
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

function vqSeq(seed: number, T: number, dk: number, dv: number, S: number) {
  return { ...randomSeq(seed, T, dk, dv), codebook: randn(createRng(seed + 9), S * dk) };
}

describe('vqAttentionBlocked = vqAttention (outputs, state, gradients)', () => {
  it.each([
    ['T1-d64-S16-L8', 1, 64, 64, 16, 8],
    ['T63-d60-S32-L16', 63, 60, 60, 32, 16],
    ['T500-d64-S64-L64', 500, 64, 64, 64, 64],
    ['T1000-d60-S128-L32', 1000, 60, 32, 128, 32],
  ])('%s', (_id, T, dk, dv, S, L) => {
    const seq = roundedF64(vqSeq(T + dk, T, dk, dv, S));
    const config: VqConfig = { codebookSize: S, blockLength: L, beta: 0.3 };
    const ref = vqAttention(seq, config);
    const out = poisoned(T * dv);
    const fast = vqAttentionBlocked(toF32(seq), config, { out });
    expect(fast.output).toBe(out);
    assertClose('output', ref.output, fast.output, TOL);
    assertClose('state.counts', ref.state.counts, fast.state.counts, 0);
    assertClose('state.valueSums', ref.state.valueSums, fast.state.valueSums, TOL);
    assertClose('state.recentValues', ref.state.recentValues, fast.state.recentValues, TOL);
    expect(Array.from(fast.state.recentCodes)).toEqual(Array.from(ref.state.recentCodes));
    const dOut = randn(createRng(T), T * dv);
    const g = vqAttentionBackward(seq, config, dOut);
    const gf = vqAttentionBlockedBackward(toF32(seq), config, Float32Array.from(dOut));
    assertClose('dq', g.dq, gf.dq, TOL);
    assertClose('dk', g.dk, gf.dk, TOL);
    assertClose('dv', g.dv, gf.dv, TOL);
    if (T > 2 * L) assertClose('dCodebook', g.dCodebook, gf.dCodebook, TOL);
    else expect(Array.from(gf.dCodebook).every((x) => x === 0)).toBe(true);
  });
});

describe('cacheKeyGradient: cached keys share the logit gradient of their row', () => {
  /**
   * The definition, written out: every key is its code plus a free offset δ_s (zero here), and a
   * cache row's key is its code plus the mean offset of the keys it holds. ∂/∂δ is the gradient
   * the option gives the keys; at δ = 0 the output is plain VQ-attention.
   */
  function offsetForward(
    seq: ReturnType<typeof vqSeq>,
    S: number,
    L: number,
    beta: number,
    delta: Float64Array,
  ): Float64Array {
    const { seqLen: T, keyDim: dk, valueDim: dv, q, k, v, codebook: cb } = seq;
    const z = Array.from({ length: T }, (_, t) => {
      let best = 0;
      let bestD = Number.POSITIVE_INFINITY;
      for (let j = 0; j < S; j++) {
        let d = 0;
        for (let i = 0; i < dk; i++) d += (k[t * dk + i] - cb[j * dk + i]) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      }
      return best;
    });
    const out = new Float64Array(T * dv);
    for (let t = 0; t < T; t++) {
      const cacheEnd = Math.max(0, (Math.floor(t / L) - 1) * L);
      const items: { key: Float64Array; value: Float64Array; bias: number }[] = [];
      for (let j = 0; j < S; j++) {
        const members = [...Array(cacheEnd).keys()].filter((s) => z[s] === j);
        if (members.length === 0) continue;
        const key = cb.slice(j * dk, (j + 1) * dk);
        const value = new Float64Array(dv);
        for (const s of members) {
          for (let i = 0; i < dk; i++) key[i] += delta[s * dk + i] / members.length;
          for (let i = 0; i < dv; i++) value[i] += v[s * dv + i] / members.length;
        }
        items.push({ key, value, bias: Math.log(members.length) });
      }
      for (let s = cacheEnd; s <= t; s++) {
        const key = cb.slice(z[s] * dk, (z[s] + 1) * dk);
        for (let i = 0; i < dk; i++) key[i] += delta[s * dk + i];
        items.push({ key, value: v.slice(s * dv, (s + 1) * dv), bias: 0 });
      }
      const logits = items.map(
        (it) => beta * it.key.reduce((a, x, i) => a + x * q[t * dk + i], 0) + it.bias,
      );
      const m = Math.max(...logits);
      const w = logits.map((l) => Math.exp(l - m));
      const total = w.reduce((a, b) => a + b, 0);
      items.forEach((it, n) => {
        for (let i = 0; i < dv; i++) out[t * dv + i] += (w[n] / total) * it.value[i];
      });
    }
    return out;
  }

  it('dk matches float64 central differences of the row-mean definition (T20-d4-S3-L3)', () => {
    const seq = vqSeq(57, 20, 4, 3, 3);
    const cfg: VqConfig = { codebookSize: 3, blockLength: 3, beta: 0.9, cacheKeyGradient: true };
    const dOut = randn(createRng(11), 20 * 3);
    const delta = new Float64Array(20 * 4);
    const f = () => offsetForward(seq, 3, 3, 0.9, delta);
    assertClose('output at δ = 0', vqAttention(seq, cfg).output, f(), 1e-12);
    const on = vqAttentionBackward(seq, cfg, dOut);
    checkGradient('dk', f, dOut, delta, on.dk);
    // Only the keys that were ever cached gain anything, and the gains of a code's keys add up to
    // the gradient its cache row gave the codebook.
    const off = vqAttentionBackward(seq, { ...cfg, cacheKeyGradient: false }, dOut);
    assertClose('dq', off.dq, on.dq, 0);
    assertClose('dv', off.dv, on.dv, 0);
    assertClose('dCodebook', off.dCodebook, on.dCodebook, 0);
    const gain = on.dk.map((x, i) => x - off.dk[i]);
    // The last query (t = 19, block 6) reads tokens < 15 from the cache; 15–19 are never cached.
    expect(gain.slice(15 * 4).every((x) => x === 0)).toBe(true);
    expect(Math.hypot(...gain.slice(0, 15 * 4))).toBeGreaterThan(0);
  });

  it.each([
    ['T63-d60-S32-L16', 63, 60, 60, 32, 16],
    ['T500-d64-S64-L64', 500, 64, 64, 64, 64],
  ])('blocked = reference (%s)', (_id, T, dk, dv, S, L) => {
    const seq = roundedF64(vqSeq(T + dk + 1, T, dk, dv, S));
    const config: VqConfig = { codebookSize: S, blockLength: L, beta: 0.3, cacheKeyGradient: true };
    const dOut = randn(createRng(T + 1), T * dv);
    const g = vqAttentionBackward(seq, config, dOut);
    const gf = vqAttentionBlockedBackward(toF32(seq), config, Float32Array.from(dOut));
    for (const name of ['dq', 'dk', 'dv', 'dCodebook'] as const)
      assertClose(name, g[name], gf[name], TOL);
    const plain = vqAttentionBlockedBackward(
      toF32(seq),
      { ...config, cacheKeyGradient: false },
      Float32Array.from(dOut),
    );
    expect(Math.hypot(...gf.dk.map((x, i) => x - plain.dk[i]))).toBeGreaterThan(0);
  });

  it('refuses a non-boolean and leaves states as they were', () => {
    const seq = vqSeq(58, 8, 4, 3, 3);
    expect(() =>
      vqAttention(seq, { codebookSize: 3, cacheKeyGradient: 1 as unknown as boolean }),
    ).toThrow(/config\.cacheKeyGradient.*true or false/);
    const on = vqAttention(seq, { codebookSize: 3, blockLength: 2, cacheKeyGradient: true });
    const off = vqAttention(seq, { codebookSize: 3, blockLength: 2 });
    expect(on.state.config).toEqual(off.state.config);
    assertClose('output', off.output, on.output, 0);
  });
});

describe('VQ-attention against independent definitions', () => {
  it('codebook = all keys gives causal softmax attention (T40-d8-L8)', () => {
    const seq = randomSeq(51, 40, 8, 5);
    const vq = vqAttention(
      { ...seq, codebook: seq.k },
      { codebookSize: 40, blockLength: 8, beta: 0.6 },
    );
    const ref = softmaxAttention(seq, { beta: 0.6 });
    assertClose('output', ref.output, vq.output, 1e-12);
  });

  it('equals softmax attention over the quantised keys for any block length (T50-d6-S7)', () => {
    const seq = vqSeq(52, 50, 6, 4, 7);
    const quantised = new Float64Array(seq.k.length);
    for (let t = 0; t < 50; t++) {
      let best = 0;
      let bestD = Number.POSITIVE_INFINITY;
      for (let j = 0; j < 7; j++) {
        let d = 0;
        for (let i = 0; i < 6; i++) d += (seq.k[t * 6 + i] - seq.codebook[j * 6 + i]) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      }
      quantised.set(seq.codebook.subarray(best * 6, best * 6 + 6), t * 6);
    }
    const ref = softmaxAttention({ ...seq, k: quantised }, { beta: 1 }).output;
    for (const L of [1, 3, 8, 64]) {
      assertClose(
        `L=${L}`,
        ref,
        vqAttention(seq, { codebookSize: 7, blockLength: L, beta: 1 }).output,
        1e-12,
      );
    }
  });
});

describe('VQ-attention streaming, causality, gradients, errors', () => {
  const config: VqConfig = { codebookSize: 5, blockLength: 4, beta: 0.8 };
  const widths = { q: 6, k: 6, v: 4 };
  it('random splits = one call (T45-d6-S5-L4)', () => {
    const seq = vqSeq(53, 45, 6, 4, 5);
    const whole = vqAttention(seq, config);
    for (const seed of [1, 2, 3]) {
      const cuts = randomSplits(45, seed);
      const { parts, state } = streamAlternating(
        cuts,
        (a, b) => ({ ...slice(seq, a, b, widths), codebook: seq.codebook }),
        createVqState(seq, config),
        {
          append: vqAppend,
          fast: (piece, state) => vqAttentionBlocked(toF32(piece), undefined, { state }),
          roundTrip: (s) => deserializeVqState(serializeVqState(s)),
        },
      );
      assertClose('outputs', whole.output, parts, 1e-6);
      assertClose('final sums', whole.state.valueSums, state.valueSums, 1e-6);
      expect(Array.from(state.counts)).toEqual(Array.from(whole.state.counts));
    }
  });

  it('causality: changing token 20 leaves outputs < 20 unchanged', () => {
    const seq = vqSeq(54, 30, 6, 4, 5);
    const a = vqAttention(seq, config).output;
    seq.v[20 * 4] += 1;
    const b = vqAttention(seq, config).output;
    expect(Array.from(b.slice(0, 80))).toEqual(Array.from(a.slice(0, 80)));
    expect(b[80]).not.toBe(a[80]);
  });

  it('gradients match float64 central differences (T14-d4-S3-L3)', () => {
    const seq = vqSeq(55, 14, 4, 3, 3);
    const cfg: VqConfig = { codebookSize: 3, blockLength: 3, beta: 0.9 };
    const dOut = randn(createRng(9), 14 * 3);
    const g = vqAttentionBackward(seq, cfg, dOut);
    const f = () => vqAttention(seq, cfg).output;
    checkGradient('dq', f, dOut, seq.q, g.dq);
    checkGradient('dv', f, dOut, seq.v, g.dv);
    // Moving the codebook moves the cache logits (dCodebook) and every quantised raw key (dk, straight-through).
    const total = g.dCodebook.slice();
    for (let t = 0; t < 14; t++) {
      let best = 0;
      let bestD = Number.POSITIVE_INFINITY;
      for (let j = 0; j < 3; j++) {
        let d = 0;
        for (let i = 0; i < 4; i++) d += (seq.k[t * 4 + i] - seq.codebook[j * 4 + i]) ** 2;
        if (d < bestD) [best, bestD] = [j, d];
      }
      for (let i = 0; i < 4; i++) total[best * 4 + i] += g.dk[t * 4 + i];
    }
    checkGradient('dCodebook + scatter(dk)', f, dOut, seq.codebook, total);
    expect(Math.hypot(...g.dCodebook)).toBeGreaterThan(0);
    expect(Math.hypot(...g.dk)).toBeGreaterThan(0);
  });

  it('straight-through dk is the gradient w.r.t. the quantised keys fed as free raw keys (T6, one block)', () => {
    // With T ≤ 2L there is no cache: output = softmax over quantised keys, so dk = ∂/∂k̂ exactly.
    const seq = vqSeq(56, 6, 4, 3, 3);
    const cfg: VqConfig = { codebookSize: 3, blockLength: 4, beta: 0.9 };
    const dOut = randn(createRng(10), 18);
    const g = vqAttentionBackward(seq, cfg, dOut);
    const { state } = vqAttention(seq, cfg);
    const kq = new Float64Array(24);
    for (let t = 0; t < 6; t++)
      kq.set(seq.codebook.subarray(state.recentCodes[t] * 4, state.recentCodes[t] * 4 + 4), t * 4);
    const f = () => softmaxAttention({ ...seq, k: kq }, { beta: 0.9 }).output;
    checkGradient('dk', f, dOut, kq, g.dk);
  });

  it('bad input: clear error, state unchanged; stateSize', () => {
    const seq = vqSeq(57, 10, 6, 4, 5);
    const state = createVqState(seq, config);
    vqAppend(state, seq);
    const before = serializeVqState(state);
    expect(() => vqAppend(state, { ...seq, codebook: seq.codebook.slice(1) })).toThrow(
      'seq.codebook: has 29 values; expected codebookSize*keyDim = 30',
    );
    expect(() => vqAttention(seq, { codebookSize: 0 })).toThrow(
      'config.codebookSize: got 0; expected an integer ≥ 1',
    );
    expect(serializeVqState(state)).toBe(before);
    expect(() =>
      deserializeVqState(before.replace('"recentLength":6', '"recentLength":5')),
    ).toThrow('text.recentLength: got 5; expected 6');
    const counts = `"counts":[${Array.from(state.counts).join(',')}]`;
    const tampered = before.replace(
      counts,
      counts.replace(/\d+\]$/, (x) => `${Number.parseInt(x, 10) + 1}]`),
    );
    expect(() => deserializeVqState(tampered)).toThrow(
      'text.counts: sum to 5; expected position − recentLength = 4',
    );
    expect(
      vqStateSize({ keyDim: 64, valueDim: 64 }, { codebookSize: 512, blockLength: 64 }, 65536),
    ).toBe(512 * 129 + 128 * 128);
  });
});
