import { poisoned } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import {
  budgetRows,
  createKvmState,
  deserializeKvmState,
  type KvmBudget,
  type KvmConfig,
  type KvmState,
  kvmAppend,
  kvmAttention,
  kvmAttentionBackward,
  kvmAttentionBlocked,
  kvmAttentionBlockedBackward,
  kvmStateSize,
  serializeKvmState,
  softmaxAttention,
} from '../src/index.js';
import { kvmCounts } from '../src/kvm/state.js';
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

function stateNumbers(s: KvmState): number {
  return (
    s.sinkKeys.length +
    s.sinkValues.length +
    s.rowKeys.length +
    s.rowValues.length +
    s.rowRadii.length +
    s.windowKeys.length +
    s.windowValues.length
  );
}

describe('kvmAttentionBlocked = kvmAttention (outputs, state, gradients)', () => {
  it.each([
    ['T1-d64', 1, 64, 64, { window: 16, beta: 8, budget: { kind: 'sqrt', scale: 2 } }],
    [
      'T63-d60-W16-B8-sinks2',
      63,
      60,
      60,
      { window: 16, blockSize: 8, beta: 6, budget: { kind: 'fixed', rows: 5 }, sinks: 2 },
    ],
    [
      'T500-d64-W64-sqrt',
      500,
      64,
      64,
      { window: 64, beta: 10, budget: { kind: 'sqrt', scale: 2 } },
    ],
    [
      'T1000-d60-W64-B32-saturating',
      1000,
      60,
      32,
      { window: 64, blockSize: 32, beta: 10, budget: { kind: 'saturating', rows: 64 }, sinks: 4 },
    ],
  ] as Array<[string, number, number, number, KvmConfig]>)('%s', (_id, T, dk, dv, config) => {
    const seq = roundedF64(randomSeq(T + dk, T, dk, dv));
    const ref = kvmAttention(seq, config);
    const out = poisoned(T * dv);
    const fast = kvmAttentionBlocked(toF32(seq), config, { out });
    expect(fast.output).toBe(out);
    assertClose('output', ref.output, fast.output, TOL);
    expect(fast.state.rowCount).toBe(ref.state.rowCount);
    assertClose('rowKeys', ref.state.rowKeys, fast.state.rowKeys, TOL);
    assertClose('rowValues', ref.state.rowValues, fast.state.rowValues, TOL);
    assertClose('rowRadii', ref.state.rowRadii, fast.state.rowRadii, TOL);
    assertClose('windowKeys', ref.state.windowKeys, fast.state.windowKeys, TOL);
    const dOut = randn(createRng(T), T * dv);
    const g = kvmAttentionBackward(seq, config, dOut);
    const gf = kvmAttentionBlockedBackward(toF32(seq), config, Float32Array.from(dOut));
    assertClose('dq', g.dq, gf.dq, TOL);
    assertClose('dk', g.dk, gf.dk, TOL);
    assertClose('dv', g.dv, gf.dv, TOL);
  });
});

describe('KVM against independent definitions', () => {
  const seq = randomSeq(61, 40, 6, 5);
  const softmax = softmaxAttention(seq, { normalize: true, beta: 3 }).output;

  it('window ≥ T is causal softmax attention on unit q, k (T40)', () => {
    const { output } = kvmAttention(seq, {
      window: 64,
      beta: 3,
      budget: { kind: 'fixed', rows: 1 },
    });
    assertClose('output', softmax, output, 1e-12);
  });

  it('a row budget ≥ T keeps every token exactly (rows = tokens), for any window (T40)', () => {
    for (const [window, blockSize] of [
      [4, 4],
      [8, 2],
      [1, 1],
    ]) {
      const { output, state } = kvmAttention(seq, {
        window,
        blockSize,
        beta: 3,
        budget: { kind: 'fixed', rows: 64 },
      });
      assertClose(`W${window}-B${blockSize}`, softmax, output, 1e-12);
      expect(state.rowCount).toBe(state.compressed);
    }
  });

  it('merge: renormalised key and value sums, mean radius (T2, one row)', () => {
    const s = randomSeq(62, 2, 3, 2);
    const { state } = kvmAttention(s, { window: 2, beta: 1, budget: { kind: 'fixed', rows: 1 } });
    const unit = (x: number[]) => x.map((a) => a / Math.hypot(...x));
    const k0 = unit(Array.from(s.k.slice(0, 3)));
    const k1 = unit(Array.from(s.k.slice(3, 6)));
    const v0 = Array.from(s.v.slice(0, 2));
    const v1 = Array.from(s.v.slice(2, 4));
    expect(state.rowCount).toBe(1);
    assertClose('K', unit(k0.map((a, i) => a + k1[i])), state.rowKeys, 1e-14);
    assertClose('U', unit(v0.map((a, i) => a + v1[i])), state.rowValues, 1e-14);
    assertClose('rho', [(Math.hypot(...v0) + Math.hypot(...v1)) / 2], state.rowRadii, 1e-14);
  });

  it('append picks the most novel token (least similar to every row)', () => {
    // Budget ⌊0.9√τ⌋: 1 row after block 1 (seeded along e0), 2 after block 2, whose keys are two near
    // e0 and one along e1: the e1 token is appended, the others merge.
    const k = new Float64Array([
      1, 0, 0, 1, 0.1, 0, 0.9, 0.1, 0, 0.95, 0, 0.1, 0, 1, 0, 1, 0.05, 0,
    ]);
    const v = randn(createRng(3), 12);
    const s = { q: k.slice(), k, v, seqLen: 6, keyDim: 3, valueDim: 2 };
    const { state } = kvmAttention(s, { window: 3, beta: 1, budget: { kind: 'sqrt', scale: 0.9 } });
    expect(state.rowCount).toBe(2);
    assertClose('new row key', [0, 1, 0], state.rowKeys.slice(3, 6), 1e-14);
    assertClose('new row radius', [Math.hypot(v[8], v[9])], state.rowRadii.slice(1), 1e-14);
  });
});

describe('KVM streaming, causality, gradients, errors', () => {
  const config: KvmConfig = {
    window: 6,
    blockSize: 3,
    beta: 4,
    budget: { kind: 'sqrt', scale: 1.5 },
    sinks: 2,
  };
  it('random splits = one call (T60-d6, sinks, sqrt budget)', () => {
    const seq = randomSeq(63, 60, 6, 4);
    const whole = kvmAttention(seq, config);
    for (const seed of [1, 2, 3]) {
      const cuts = randomSplits(60, seed);
      const { parts, state } = streamAlternating(
        cuts,
        (a, b) => slice(seq, a, b, { q: 6, k: 6, v: 4 }),
        createKvmState(seq, config),
        {
          append: kvmAppend,
          fast: (piece, state) => kvmAttentionBlocked(toF32(piece), undefined, { state }),
          roundTrip: (s) => deserializeKvmState(serializeKvmState(s)),
        },
      );
      assertClose('outputs', whole.output, parts, 1e-5);
      assertClose('final rows', whole.state.rowKeys, state.rowKeys, 1e-5);
      expect(state.rowCount).toBe(whole.state.rowCount);
    }
  });

  it('causality: changing token 20 leaves outputs < 20 unchanged', () => {
    const seq = randomSeq(64, 30, 5, 3);
    const a = kvmAttention(seq, config).output;
    seq.k[20 * 5] += 1;
    seq.v[20 * 3] += 1;
    const b = kvmAttention(seq, config).output;
    expect(Array.from(b.slice(0, 60))).toEqual(Array.from(a.slice(0, 60)));
    expect(b[60]).not.toBe(a[60]);
  });

  it.each([
    [
      'sinks2-W4-B2-fixed2',
      { window: 4, blockSize: 2, beta: 2, budget: { kind: 'fixed', rows: 2 }, sinks: 2 },
    ],
    ['W2-B1-sqrt', { window: 2, blockSize: 1, beta: 3, budget: { kind: 'sqrt', scale: 1 } }],
  ] as Array<[string, KvmConfig]>)(
    'gradients match float64 central differences (T14-d4, %s)',
    (_id, cfg) => {
      const seq = randomSeq(65, 14, 4, 3);
      const dOut = randn(createRng(11), 14 * 3);
      const g = kvmAttentionBackward(seq, cfg, dOut);
      const f = () => kvmAttention(seq, cfg).output;
      checkGradient('dq', f, dOut, seq.q, g.dq);
      checkGradient('dk', f, dOut, seq.k, g.dk);
      checkGradient('dv', f, dOut, seq.v, g.dv);
      expect(kvmAttention(seq, cfg).state.rowCount).toBeGreaterThan(0);
    },
  );

  it('bad input: clear error, state unchanged; stateSize = numbers held', () => {
    const seq = randomSeq(66, 25, 6, 4);
    const state = createKvmState(seq, config);
    kvmAppend(state, seq);
    const before = serializeKvmState(state);
    expect(() => kvmAppend(state, { ...seq, k: seq.k.subarray(0, 149) })).toThrow(
      'seq.k: has 149 values; expected seqLen*keyDim = 150',
    );
    expect(() => kvmAttention(seq, { ...config, window: 7 })).toThrow(
      'config.window: got 7; expected a multiple of config.blockSize = 3',
    );
    expect(() => kvmAttention(seq, { ...config, budget: { kind: 'fixed' } as never })).toThrow(
      'config.budget.rows',
    );
    expect(serializeKvmState(state)).toBe(before);
    expect(() => deserializeKvmState(before.replace('"rowCount":', '"rowCount":1'))).toThrow(
      'expected',
    );
    for (const T of [1, 7, 25, 100]) {
      const { state: s } = kvmAttention(randomSeq(T, T, 6, 4), config);
      expect(stateNumbers(s)).toBe(kvmStateSize(seq, config, T));
    }
  });
});

describe('kvmCounts (stateSize and state checks) in closed form', () => {
  it('equals the block-by-block row recurrence of the engine for every budget kind', () => {
    const budgets: KvmBudget[] = [];
    for (const rows of [1, 2, 3, 8, 17]) {
      budgets.push({ kind: 'fixed', rows }, { kind: 'saturating', rows });
    }
    for (const scale of [0.1, 1, 3.7, 50]) budgets.push({ kind: 'sqrt', scale });
    for (const budget of budgets) {
      for (const [B, blocks, sinks] of [
        [1, 1, 0],
        [2, 3, 1],
        [3, 2, 5],
        [8, 1, 9],
      ]) {
        const config = { window: B * blocks, blockSize: B, beta: 1, budget, sinks };
        let rows = 0;
        let tau = 0;
        for (let T = 1; T <= 200; T++) {
          // After token T − 1 the block ending there leaves the window (if it is old enough).
          const x = T / B - blocks;
          if (Number.isInteger(x) && x >= 0) {
            const m = Math.max(0, (x + 1) * B - Math.max(x * B, sinks));
            tau += m;
            if (m > 0) rows += Math.min(m, Math.max(0, budgetRows(budget, tau) - rows));
          }
          const n = kvmCounts(config, T);
          expect([n.compressed, n.rows], `${JSON.stringify(config)} T${T}`).toEqual([tau, rows]);
        }
      }
    }
  });

  it('stateSize for a huge T is immediate', () => {
    const size = kvmStateSize(
      { keyDim: 2, valueDim: 2 },
      { window: 4, blockSize: 1, beta: 1, budget: { kind: 'sqrt', scale: 2 } },
      1e15,
    );
    expect(size).toBe(Math.floor(2 * Math.sqrt(1e15 - 3)) * 5 + 3 * 4);
  });
});
