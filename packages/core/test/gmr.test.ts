import { describe, expect, it } from 'vitest';
import {
  absorbPending,
  componentNllDerivatives,
  conditionalMean,
  createOvqState,
  hardAssign,
  mixtureFromDictionary,
  newtonStep,
  ovqAppend,
  readState,
} from '../src/index.js';
import { STORAGE } from '../src/ovq/state.js';
import { assertClose, createRng, randn, randomSeq } from '../src/testing/index.js';

/** A state with a few absorbed chunks and some pending tokens, built by the reference itself. */
function builtState(read: 'dot' | 'gaussian', normalize: boolean) {
  const config = { chunkSize: 5, capacity: 6, beta: 1.7, read, normalize } as const;
  const state = createOvqState({ keyDim: 4, valueDim: 3 }, config);
  const seq = randomSeq(17, 33, 4, 3);
  ovqAppend(state, { q: seq.q, k: seq.k, v: seq.v, seqLen: 33 });
  return state;
}

/** The GMR mixture of a state: dictionary rows with π ∝ c, plus each pending token with c = 1. */
function mixtureOf(state: ReturnType<typeof builtState>) {
  const { keyDim, valueDim, size, pendingCount } = state;
  const keys = new Float64Array((size + pendingCount) * keyDim);
  keys.set(state.centroidKeys);
  keys.set(state.pendingKeys.subarray(0, pendingCount * keyDim), size * keyDim);
  const values = new Float64Array((size + pendingCount) * valueDim);
  values.set(state.centroidValues);
  values.set(state.pendingValues.subarray(0, pendingCount * valueDim), size * valueDim);
  const counts = new Float64Array(size + pendingCount).fill(1);
  counts.set(state.counts);
  return mixtureFromDictionary(keys, values, counts, keyDim, valueDim, state.config.beta);
}

describe('GMR view of the OVQ read', () => {
  it('the gaussian read equals the GMR conditional mean exactly', () => {
    const state = builtState('gaussian', false);
    expect(state.pendingCount).toBe(3);
    const mixture = mixtureOf(state);
    const rng = createRng(1);
    for (let trial = 0; trial < 10; trial++) {
      const q = randn(rng, 4);
      const out = new Float64Array(3);
      readState(state, q, 0, out, 0, new Float64Array(64));
      assertClose('read', conditionalMean(mixture, q), out, 1e-13);
    }
  });

  it('the dot read equals GMR when every centroid has the same norm, and differs otherwise', () => {
    const state = builtState('dot', true);
    // Project the centroids to the unit sphere: equal norms, so −β‖μ‖²/2 is a shared constant.
    // (Edited through the package-internal storage: a user's state is read-only.)
    const keys = state[STORAGE].centroidKeys;
    for (let i = 0; i < state.size; i++) {
      const row = keys.subarray(i * 4, i * 4 + 4);
      const n = Math.hypot(...row);
      for (let d = 0; d < 4; d++) row[d] /= n;
    }
    const mixture = mixtureOf(state);
    const q = randn(createRng(2), 4);
    const out = new Float64Array(3);
    readState(state, q, 0, out, 0, new Float64Array(64));
    assertClose('read', conditionalMean(mixture, q), out, 1e-13);

    keys[0] *= 3; // unequal norms: the dot read is no longer the GMR prediction
    const skewed = new Float64Array(3);
    readState(state, q, 0, skewed, 0, new Float64Array(64));
    const gmr = conditionalMean(mixtureOf(state), q);
    expect(Math.hypot(...skewed.map((x, d) => x - gmr[d]))).toBeGreaterThan(1e-6);
  });

  it('with one component per token (c = 1) the GMR prediction is softmax attention', () => {
    const seq = randomSeq(8, 6, 3, 2);
    const counts = new Float64Array(6).fill(1);
    const mixture = mixtureFromDictionary(seq.k, seq.v, counts, 3, 2, 1.3);
    const q = seq.q.subarray(0, 3);
    const logits = Array.from({ length: 6 }, (_, s) => {
      const k = seq.k.subarray(s * 3, s * 3 + 3);
      return (
        1.3 * (q[0] * k[0] + q[1] * k[1] + q[2] * k[2] - 0.5 * (k[0] ** 2 + k[1] ** 2 + k[2] ** 2))
      );
    });
    const z = logits.reduce((a, l) => a + Math.exp(l), 0);
    const expected = [0, 1].map((d) =>
      logits.reduce((a, l, s) => a + (Math.exp(l) / z) * seq.v[s * 2 + d], 0),
    );
    assertClose('softmax', expected, conditionalMean(mixture, q), 1e-13);
  });
});

describe('GMR view of the absorb', () => {
  it('assignment is the hard E-step and the 1/count update is the Newton step', () => {
    const state = createOvqState(
      { keyDim: 3, valueDim: 2 },
      { chunkSize: 6, capacity: 3, beta: 2, growth: 'fixed', normalize: false },
    );
    const seq = randomSeq(12, 12, 3, 2);
    ovqAppend(state, {
      q: seq.q.subarray(0, 18),
      k: seq.k.subarray(0, 18),
      v: seq.v.subarray(0, 12),
      seqLen: 6,
    });
    expect(state.size).toBe(3);
    // Fill the pending buffer without absorbing (5 of 6 tokens), then absorb by hand.
    ovqAppend(state, {
      q: seq.q.subarray(18, 33),
      k: seq.k.subarray(18, 33),
      v: seq.v.subarray(12, 22),
      seqLen: 5,
    });
    // (through the package-internal storage: users cannot write a state)
    const storage = state[STORAGE];
    storage.pendingKeys.set(seq.k.subarray(33, 36), 15);
    storage.pendingValues.set(seq.v.subarray(22, 24), 10);
    storage.pendingCount = 6;
    storage.tokensSeen += 1;
    const before = { keys: state.centroidKeys.slice(), counts: state.counts.slice() };
    const mixture = mixtureFromDictionary(
      before.keys,
      state.centroidValues.slice(),
      before.counts,
      3,
      2,
      2,
    );
    const eStep = hardAssign(mixture, state.pendingKeys, 6);
    const record = absorbPending(state);
    expect(record.spawned).toEqual([]);
    expect(Array.from(eStep)).toEqual(record.assignment);
    for (let i = 0; i < 3; i++) {
      const assigned = record.assignment.flatMap((row, j) =>
        row === i ? [seq.k.subarray((6 + j) * 3, (7 + j) * 3)] : [],
      );
      const mu = before.keys.subarray(i * 3, i * 3 + 3);
      const { gradient, hessianScale } = componentNllDerivatives(mu, before.counts[i], assigned, 2);
      assertClose(
        `row ${i}`,
        newtonStep(mu, gradient, hessianScale),
        state.centroidKeys.subarray(i * 3, i * 3 + 3),
        1e-14,
      );
      expect(state.counts[i]).toBe(before.counts[i] + assigned.length);
    }
  });
});
