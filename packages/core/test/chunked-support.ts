// Shared pieces of the chunked-path tests: comparison against the reference (replaying the chunked
// path's decisions only when float32 rounding flipped a near-tie, and counting how often), and
// small independent definitions.
import { expect } from 'vitest';
import { ovqAttentionReference } from '../src/ovq/reference.js';
import type { OvqState } from '../src/ovq/state.js';
import type { OvqConfig, OvqTrace, Seq } from '../src/ovq/types.js';
import { assertClose } from '../src/testing/index.js';
import { verifyDecisions } from './decisions-support.js';

export const TOL = 1e-5;

/** Comparisons against the reference, and how many needed a replay of the chunked decisions. */
export const replayStats = { compared: 0, replayed: 0, absorbs: 0, flippedAbsorbs: 0 };

function sameRecord(a: OvqTrace[number], b: OvqTrace[number]): boolean {
  return (
    a.sizeBefore === b.sizeBefore &&
    a.spawned.length === b.spawned.length &&
    a.spawned.every((x, i) => x === b.spawned[i]) &&
    a.assignment.every((x, i) => x === b.assignment[i])
  );
}

/**
 * The reference run to compare a chunked run with: its own decisions when they agree with the
 * chunked trace, else a replay of the chunked trace (ALGORITHM.md allows it; never a looser tol).
 */
export function referenceFor(seq: Seq, config: OvqConfig, chunkedTrace: OvqTrace) {
  const own = ovqAttentionReference(seq, config);
  replayStats.compared++;
  replayStats.absorbs += own.trace.length;
  expect(own.trace.length).toBe(chunkedTrace.length);
  const flipped = own.trace.filter((r, a) => !sameRecord(r, chunkedTrace[a])).length;
  if (flipped === 0) return own;
  // A replay is allowed only for genuine ties: every chunked decision must be float64-optimal.
  verifyDecisions(seq, config, chunkedTrace);
  replayStats.replayed++;
  replayStats.flippedAbsorbs += flipped;
  return ovqAttentionReference(seq, config, { replay: chunkedTrace });
}

/** Asserts two states hold the same stream (counters and counts exactly, rows to `tol`). */
export function expectSameState(name: string, ref: OvqState, actual: OvqState, tol = TOL): void {
  expect(actual.size, `${name}: size`).toBe(ref.size);
  expect(actual.tokensSeen, `${name}: tokensSeen`).toBe(ref.tokensSeen);
  expect(actual.pendingCount, `${name}: pendingCount`).toBe(ref.pendingCount);
  expect(actual.rngState, `${name}: rngState`).toBe(ref.rngState);
  expect(Array.from(actual.counts), `${name}: counts`).toEqual(Array.from(ref.counts));
  assertClose(`${name}: centroidKeys`, ref.centroidKeys, actual.centroidKeys, tol);
  assertClose(`${name}: centroidValues`, ref.centroidValues, actual.centroidValues, tol);
  const pk = ref.pendingCount * ref.keyDim;
  const pv = ref.pendingCount * ref.valueDim;
  assertClose(
    `${name}: pendingKeys`,
    ref.pendingKeys.subarray(0, pk),
    actual.pendingKeys.subarray(0, pk),
    tol,
  );
  assertClose(
    `${name}: pendingValues`,
    ref.pendingValues.subarray(0, pv),
    actual.pendingValues.subarray(0, pv),
    tol,
  );
}

/** Causal softmax attention with scale β on L2-normalised q, k (direct T×T loop, float64). */
export function causalSoftmax(seq: Seq, beta: number): Float64Array {
  const { q, k, v, seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const norm = (x: ArrayLike<number>, t: number) => {
    let s = 0;
    for (let d = 0; d < dk; d++) s += x[t * dk + d] ** 2;
    return Math.max(Math.sqrt(s), 1e-12);
  };
  const out = new Float64Array(T * dv);
  const logits = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let s = 0; s <= t; s++) {
      let dot = 0;
      for (let d = 0; d < dk; d++) dot += q[t * dk + d] * k[s * dk + d];
      logits[s] = (beta * dot) / (norm(q, t) * norm(k, s));
      max = Math.max(max, logits[s]);
    }
    let z = 0;
    for (let s = 0; s <= t; s++) z += logits[s] = Math.exp(logits[s] - max);
    for (let s = 0; s <= t; s++) {
      for (let d = 0; d < dv; d++) out[t * dv + d] += (logits[s] / z) * v[s * dv + d];
    }
  }
  return out;
}

/** Random cut points splitting [0, T) into `pieces` (some empty, some longer than a chunk). */
export function randomCuts(rng: () => number, T: number, pieces: number): number[] {
  const cuts = Array.from({ length: pieces - 1 }, () => Math.floor(rng() * (T + 1)));
  return [0, ...cuts.sort((a, b) => a - b), T];
}

/** Rows [from, to) of a one-head sequence. */
export function sliceSeq(seq: Seq, from: number, to: number): Seq {
  const { keyDim: dk, valueDim: dv } = seq;
  return {
    q: seq.q.slice(from * dk, to * dk),
    k: seq.k.slice(from * dk, to * dk),
    v: seq.v.slice(from * dv, to * dv),
    seqLen: to - from,
    keyDim: dk,
    valueDim: dv,
  };
}

/** Option variants every fast path must support (ALGORITHM.md §4 config options). */
export const OPTION_CASES: [string, Partial<OvqConfig>][] = [
  ['default', {}],
  ['gaussian', { read: 'gaussian' }],
  ['ema0.3', { update: { kind: 'ema', rate: 0.3 } }],
  ['ema1', { update: { kind: 'ema', rate: 1 } }],
  ['mean-object', { update: { kind: 'mean' } }],
  ['first', { spawn: 'first' }],
  ['random', { spawn: 'random', seed: 7 }],
  [
    'random-gaussian-ema',
    { spawn: 'random', seed: 11, read: 'gaussian', update: { kind: 'ema', rate: 0.5 } },
  ],
  ['log', { growth: { kind: 'log', alpha: 3 } }],
  ['sqrt', { growth: { kind: 'sqrt', scale: 1.5 } }],
  ['linear', { growth: { kind: 'linear', rate: 0.25 } }],
  ['fixed', { growth: 'fixed' }],
  ['full', { growth: 'full' }],
  ['saturating-object', { growth: { kind: 'saturating' } }],
  ['raw', { normalize: false, beta: 0.5 }],
  ['novelty', { spawnDistance: 1.2 }],
  ['novelty-reserve', { spawnDistance: 1.2, growth: { kind: 'saturating', rows: 3 } }],
  [
    'novelty-random-ema-log',
    {
      spawnDistance: 0.8,
      spawn: 'random',
      seed: 5,
      update: { kind: 'ema', rate: 0.5 },
      growth: { kind: 'log', alpha: 2 },
    },
  ],
];
