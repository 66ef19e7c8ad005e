// Transformer-VQ's codebook learning (EMA k-means + commitment loss), float64 references: against
// values worked out by hand, central differences, and k-means behaviour on clustered keys.
import { describe, expect, it } from 'vitest';
import {
  BaselineInputError,
  type VqCodebookStats,
  vqCodebookFromStats,
  vqCommitmentLoss,
  vqEmaUpdate,
  vqRestartDeadCodes,
} from '../src/index.js';
import { assertClose, checkGradient, createRng, randn } from './helpers.js';

const stats = (counts: number[], sums: number[], keyDim: number): VqCodebookStats => ({
  codebookSize: counts.length,
  keyDim,
  counts: Float64Array.from(counts),
  sums: Float64Array.from(sums),
});

/** perBatch keys [perBatch, dk]: key t = centre cluster(t) + 0.05·noise. */
function clusteredKeys(
  rng: () => number,
  centres: Float64Array,
  dk: number,
  perBatch: number,
  cluster: (t: number) => number,
): Float64Array {
  const keys = new Float64Array(perBatch * dk);
  const noise = randn(rng, perBatch * dk);
  for (let t = 0; t < perBatch; t++) {
    const c = cluster(t);
    for (let i = 0; i < dk; i++) keys[t * dk + i] = centres[c * dk + i] + 0.05 * noise[t * dk + i];
  }
  return keys;
}

describe('vqCodebookFromStats', () => {
  it('is m_j / ñ_j with Laplace-smoothed sizes (hand-computed, S2 dk2)', () => {
    // n = [3, 1], N = 4, ε = 0.5: ñ = (n + ε)/(N + 2ε)·N = [3.5, 1.5]·4/5 = [2.8, 1.2].
    const s = stats([3, 1], [2.8, -5.6, 0.6, 1.2], 2);
    const c = vqCodebookFromStats(s, 0.5);
    assertClose('codebook', [1, -2, 0.5, 1], c, 1e-15);
    // An unused code (n = 0) keeps a finite codeword: ñ = ε·N/(N + Sε).
    const dead = vqCodebookFromStats(stats([2, 0], [2, 2, 1, 1], 2), 1e-5);
    expect(dead.every(Number.isFinite)).toBe(true);
    expect(dead[2]).toBeCloseTo(1 / ((1e-5 * 2) / (2 + 2e-5)), 3);
  });
});

describe('vqEmaUpdate', () => {
  it('matches a hand-computed step (S2 dk2, γ = 0.9, three keys)', () => {
    // Codebook before: ε tiny, so c ≈ m/n = [(0, 0), (10, 10)].
    const before = stats([1, 2], [0, 0, 20, 20], 2);
    const keys = Float64Array.from([1, 0, 9, 11, 0, 2]); // codes 0, 1, 0
    const after = vqEmaUpdate(before, keys, { decay: 0.9, epsilon: 1e-12 });
    // n ← 0.9·n + 0.1·[2, 1]; m ← 0.9·m + 0.1·[(1, 2), (9, 11)].
    assertClose('counts', [0.9 + 0.2, 1.8 + 0.1], after.counts, 1e-15);
    assertClose('sums', [0.1, 0.2, 18 + 0.9, 18 + 1.1], after.sums, 1e-15);
    expect(Array.from(before.counts)).toEqual([1, 2]); // the input is not changed
    const c = vqCodebookFromStats(after, 1e-12);
    assertClose('codebook', [0.1 / 1.1, 0.2 / 1.1, 18.9 / 1.9, 19.1 / 1.9], c, 1e-9);
  });

  it('γ = 0 is one Lloyd (k-means) step: codewords become the means of their clusters', () => {
    const rng = createRng(3);
    const keys = randn(rng, 40 * 3);
    const s = stats([1, 1, 1, 1], Array.from(randn(rng, 12)), 3);
    const next = vqCodebookFromStats(vqEmaUpdate(s, keys, { decay: 0 }), 1e-12);
    const { codes } = vqCommitmentLoss(keys, vqCodebookFromStats(s), 4, 3);
    for (let j = 0; j < 4; j++) {
      const members = [...codes.keys()].filter((t) => codes[t] === j);
      if (members.length === 0) continue;
      for (let i = 0; i < 3; i++) {
        const mean = members.reduce((a, t) => a + keys[t * 3 + i], 0) / members.length;
        expect(next[j * 3 + i]).toBeCloseTo(mean, 9);
      }
    }
  });

  it.each([11, 12, 13])(
    'repeated steps on clustered keys cut the quantisation error ≥ 5× (seed %i, S8, 4 clusters)',
    (seed) => {
      // 4 well-separated centres in 4-D, keys = centre + 0.05·noise; the codebook starts random.
      // EMA k-means has local minima (a code may end up shared by two clusters, another unused;
      // no restarts, as in the paper), so the floor E‖0.05·ξ‖² = 0.01 is not promised per seed.
      const rng = createRng(seed);
      const [S, dk, clusters, perBatch] = [8, 4, 4, 64];
      const centres = randn(rng, clusters * dk).map((x) => 3 * x);
      const batch = () =>
        clusteredKeys(rng, centres, dk, perBatch, () => Math.floor(rng() * clusters));
      let s = stats(Array(S).fill(1), Array.from(randn(rng, S * dk)), dk);
      const probe = batch();
      const error = () => vqCommitmentLoss(probe, vqCodebookFromStats(s), S, dk).loss / perBatch;
      const first = error();
      for (let step = 0; step < 300; step++) s = vqEmaUpdate(s, batch(), { decay: 0.9 });
      expect(error()).toBeLessThan(first / 5);
    },
  );
});

describe('vqRestartDeadCodes', () => {
  it('restarts exactly the codes under the threshold at their picked keys (hand-computed, S3 dk2)', () => {
    const before = stats([0.5, 3, 1.99], [1, 1, 6, 9, 4, 4], 2);
    const keys = Float64Array.from([1, 2, 3, 4, 5, 6]); // rows 0, 1, 2
    const after = vqRestartDeadCodes(before, keys, 2, [2, 0, 1]);
    assertClose('counts', [2, 3, 2], after.counts, 0);
    assertClose('sums', [10, 12, 6, 9, 6, 8], after.sums, 0);
    // The restarted codewords are the picked keys (up to the Laplace smoothing).
    assertClose('codebook', [5, 6, 2, 3, 3, 4], vqCodebookFromStats(after, 1e-12), 1e-9);
    expect(Array.from(before.counts)).toEqual([0.5, 3, 1.99]); // the input is not changed
    // Threshold 0 keeps every code (the paper's recipe).
    const kept = vqRestartDeadCodes(before, keys, 0, [0, 0, 0]);
    expect(Array.from(kept.sums)).toEqual(Array.from(before.sums));
  });

  it('revives codes the keys have left behind, where plain EMA k-means keeps one code for every key (4 clusters, S8)', () => {
    // The trained-model failure in small form: the keys have moved away from 7 of the 8 codes
    // (they sit far off at −100·e₀) and the 8th is at the keys' overall mean. Every key is nearest
    // to that one code, so plain EMA k-means never moves the others; restarts seed them at keys.
    const rng = createRng(31);
    const [S, dk, clusters, perBatch] = [8, 4, 4, 64];
    const centres = randn(rng, clusters * dk).map((x) => 3 * x);
    const batch = () => clusteredKeys(rng, centres, dk, perBatch, (t) => t % clusters);
    const mean = Array.from({ length: dk }, (_, i) =>
      centres.reduce((a, x, r) => (r % dk === i ? a + x / clusters : a), 0),
    );
    const start = () => {
      const sums: number[] = Array.from({ length: S * dk }, (_, r) => (r % dk === 0 ? -100 : 0));
      for (let i = 0; i < dk; i++) sums[(S - 1) * dk + i] = 10 * mean[i];
      return stats([...Array(S - 1).fill(1), 10], sums, dk);
    };
    const probe = batch();
    const usage = (s: VqCodebookStats) => {
      const r = vqCommitmentLoss(probe, vqCodebookFromStats(s), S, dk);
      return { codes: new Set(r.codes).size, error: r.loss / perBatch };
    };
    let plain = start();
    let restarted = start();
    for (let step = 0; step < 200; step++) {
      plain = vqEmaUpdate(plain, batch());
      const keys = batch();
      const picks = Array.from({ length: S }, () => Math.floor(rng() * perBatch));
      restarted = vqRestartDeadCodes(vqEmaUpdate(restarted, keys), keys, 2, picks);
    }
    expect(usage(plain).codes).toBe(1);
    expect(usage(restarted).codes).toBeGreaterThanOrEqual(clusters);
    // Each cluster has a code of its own: the error falls to the noise floor's order (4·0.05² = 0.01).
    expect(usage(restarted).error).toBeLessThan(0.1);
    expect(usage(plain).error).toBeGreaterThan(10 * usage(restarted).error);
  });
});

describe('vqCommitmentLoss', () => {
  it('value is Σ‖k − c_z‖² and dKeys = 2(k − c_z) matches central differences; the codebook is constant', () => {
    const rng = createRng(5);
    const [S, dk, n] = [5, 3, 9];
    const keys = randn(rng, n * dk);
    const codebook = randn(rng, S * dk);
    const r = vqCommitmentLoss(keys, codebook, S, dk);
    let want = 0;
    for (let t = 0; t < n; t++) {
      let best = Number.POSITIVE_INFINITY;
      for (let j = 0; j < S; j++) {
        let d = 0;
        for (let i = 0; i < dk; i++) d += (keys[t * dk + i] - codebook[j * dk + i]) ** 2;
        best = Math.min(best, d);
      }
      want += best;
    }
    expect(r.loss).toBeCloseTo(want, 12);
    checkGradient(
      'dKeys',
      () => [vqCommitmentLoss(keys, codebook, S, dk).loss],
      [1],
      keys,
      r.dKeys,
    );
  });
});

describe('bad input', () => {
  it('names the argument, the value and what was expected', () => {
    const s = stats([1, 1], [0, 0, 1, 1], 2);
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(BaselineInputError);
        return (e as Error).message;
      }
      throw new Error('expected a throw');
    };
    expect(err(() => vqEmaUpdate(s, Float64Array.of(1, 2, 3)))).toMatch(
      /^keys: .*expected a multiple of keyDim = 2/,
    );
    expect(err(() => vqEmaUpdate(s, Float64Array.of(1, Number.NaN)))).toMatch(/^keys: /);
    expect(err(() => vqEmaUpdate(s, Float64Array.of(1, 2), { decay: 1 }))).toMatch(
      /^options\.decay: got 1; expected a number in \[0, 1\)/,
    );
    expect(err(() => vqRestartDeadCodes(s, Float64Array.of(1, 2), -1, [0, 0]))).toMatch(
      /^threshold: got -1; expected a finite number ≥ 0/,
    );
    expect(err(() => vqRestartDeadCodes(s, Float64Array.of(1, 2), 2, [0]))).toMatch(
      /^picks: .*expected 2 row indices/,
    );
    expect(err(() => vqRestartDeadCodes(s, Float64Array.of(1, 2), 2, [0, 1]))).toMatch(
      /^picks: holds 1 at code 1; expected integers in \[0, 1\)/,
    );
    expect(err(() => vqCodebookFromStats(stats([1, -1], [0, 0, 1, 1], 2)))).toMatch(
      /^stats\.counts: holds -1; expected values ≥ 0/,
    );
    expect(err(() => vqCodebookFromStats(stats([0, 0], [0, 0, 1, 1], 2)))).toMatch(
      /^stats\.counts: sum to 0; expected a positive total/,
    );
    expect(err(() => vqCommitmentLoss(Float64Array.of(1, 2), Float64Array.of(1), 2, 2))).toMatch(
      /^codebook: has 1 values; expected codebookSize·keyDim = 4/,
    );
  });
});
