// The chunked path's own absorb decisions (no replay) on random and adversarial keys: every
// farthest-point pick and nearest-row assignment is float64-optimal up to a tie of DECISION_EPS
// (test/decisions-support.ts). And the mean update by the spec's formula: a row of identical
// keys is exactly that key, on both paths.
import { afterAll, describe, expect, it } from 'vitest';
import { ovqAttention, ovqAttentionBackward } from '../src/chunked/index.js';
import { normalizeRow } from '../src/ovq/read.js';
import { ovqAttentionReference } from '../src/ovq/reference.js';
import type { OvqConfig, Seq } from '../src/ovq/types.js';
import { createRng, randn, randomSeq } from '../src/testing/index.js';
import { OPTION_CASES } from './chunked-support.js';
import { DECISION_EPS, type DecisionStats, verifyDecisions } from './decisions-support.js';

const total: DecisionStats = { decisions: 0, ties: 0, maxGap: 0 };
afterAll(() => {
  console.log(
    `chunked decisions: ${total.decisions} checked, ${total.ties} differ from the float64 optimum (each within its tie ε: DECISION_EPS = ${DECISION_EPS} scaled by ‖k‖·(‖k − μ‖ + ‖k − μ*‖)), largest absolute gap ${total.maxGap.toExponential(2)}`,
  );
});

function check(seq: Seq, config: OvqConfig): DecisionStats {
  const run = ovqAttention(seq, config);
  const stats = verifyDecisions(seq, config, run.trace);
  total.decisions += stats.decisions;
  total.ties += stats.ties;
  total.maxGap = Math.max(total.maxGap, stats.maxGap);
  return stats;
}

/** Keys drawn around `centers` random directions with per-coordinate noise `spread`. */
function clustered(
  seed: number,
  T: number,
  d: number,
  centers: number,
  spread: number,
  scale = 1,
): Seq {
  const rng = createRng(seed);
  const base = randn(rng, centers * d);
  const seq = randomSeq(seed + 1, T, d, d);
  for (let t = 0; t < T; t++) {
    const c = Math.floor(rng() * centers);
    const noise = randn(rng, d);
    for (let i = 0; i < d; i++) seq.k[t * d + i] = scale * (base[c * d + i] + spread * noise[i]);
  }
  return seq;
}

describe('random keys, every option', () => {
  for (const [name, options] of OPTION_CASES) {
    it(name, () => {
      for (const [T, d, C, N] of [
        [400, 12, 16, 24],
        [300, 64, 32, 40],
      ]) {
        check(randomSeq(T + d, T, d, d), { chunkSize: C, capacity: N, beta: 3, ...options });
      }
    });
  }
});

describe('adversarial keys', () => {
  const cases: [string, Seq][] = [
    ['near duplicates (spread 1e-3)', clustered(1, 600, 16, 6, 1e-3)],
    ['near duplicates (spread 1e-5)', clustered(2, 600, 16, 6, 1e-5)],
    ['near duplicates below float32 resolution (spread 1e-8)', clustered(3, 600, 16, 6, 1e-8)],
    ['clusters (spread 0.1)', clustered(4, 600, 32, 10, 0.1)],
    ['exact duplicates', clustered(5, 600, 8, 4, 0)],
  ];
  for (const [name, seq] of cases) {
    for (const options of [
      {},
      { spawn: 'first' as const },
      { update: { kind: 'ema' as const, rate: 0.5 } },
      { growth: 'full' as const },
    ]) {
      it(`${name} ${JSON.stringify(options)}`, () => {
        check(seq, { chunkSize: 16, capacity: 24, beta: 4, ...options });
      });
    }
  }
  it('large raw keys whose f32 ‖k‖² + ‖μ‖² − 2k·μ cancels (normalize: false)', () => {
    // ‖k‖² ≈ 1e6·16 while near-duplicates differ by 1e-1: the float32 expansion has no digits
    // left for the difference; the float64 re-rank must decide.
    const seq = clustered(6, 600, 16, 6, 1e-4, 1000);
    check(seq, { chunkSize: 16, capacity: 24, beta: 1e-6, normalize: false });
    check(seq, { chunkSize: 16, capacity: 24, beta: 1e-6, normalize: false, growth: 'fixed' });
  });
  it('the backward pass decides the same way', () => {
    const seq = clustered(7, 300, 16, 5, 1e-5);
    const config = { chunkSize: 16, capacity: 20, beta: 4 };
    const trace = ovqAttentionBackward(seq, config, new Float32Array(300 * 16).fill(1)).trace;
    verifyDecisions(seq, config, trace);
    expect(trace).toEqual(ovqAttention(seq, config).trace);
  });
});

describe('mean update by the spec formula: identical keys leave their row exact', () => {
  // Six keys (and values) exactly representable in float32, so both paths see the same values;
  // each repeated T/6 times in turn; growth 'fixed' gives them a row each at the first absorb.
  const d = 7;
  const rows = 6;
  const rng = createRng(77);
  const keys = Array.from({ length: rows }, () => Float32Array.from(randn(rng, d)));
  const vals = Array.from({ length: rows }, () => Float32Array.from(randn(rng, 3)));
  const T = 594; // 33 absorbs of 18: three copies of each key per absorb (m = 3)
  const seq: Seq = {
    q: randomSeq(8, T, d, 3).q,
    k: new Float64Array(T * d),
    v: new Float64Array(T * 3),
    seqLen: T,
    keyDim: d,
    valueDim: 3,
  };
  for (let t = 0; t < T; t++) {
    seq.k.set(keys[t % rows], t * d);
    seq.v.set(vals[t % rows], t * 3);
  }
  for (const update of ['mean', { kind: 'ema', rate: 0.3 }] as const) {
    for (const normalize of [false, true]) {
      it(`${JSON.stringify(update)}, normalize ${normalize}`, () => {
        const config: OvqConfig = {
          chunkSize: 18,
          capacity: rows,
          beta: 2,
          growth: 'fixed',
          update,
          normalize,
        };
        const ref = ovqAttentionReference(seq, config).state;
        const fast = ovqAttention(seq, config).state;
        expect(ref.size).toBe(rows);
        expect(Array.from(ref.counts)).toEqual(new Array(rows).fill(T / rows));
        for (let r = 0; r < rows; r++) {
          const own = new Float64Array(d);
          if (normalize) normalizeRow(keys[r], 0, d, own, 0);
          else own.set(keys[r]);
          const at = ref.centroidKeys.findIndex((x, i) => i % d === 0 && x === own[0]) / d;
          expect(at, `row of key ${r}`).toBeGreaterThanOrEqual(0);
          // The reference keeps its float64 k̂; the fast path its float32 k̂ (its input to the sums).
          expect(Array.from(ref.centroidKeys.subarray(at * d, (at + 1) * d))).toEqual(
            Array.from(own),
          );
          expect(Array.from(fast.centroidKeys.subarray(at * d, (at + 1) * d))).toEqual(
            Array.from(own, Math.fround),
          );
          expect(Array.from(ref.centroidValues.subarray(at * 3, at * 3 + 3))).toEqual(
            Array.from(vals[r]),
          );
          expect(Array.from(fast.centroidValues.subarray(at * 3, at * 3 + 3))).toEqual(
            Array.from(vals[r]),
          );
        }
      });
    }
  }
});
