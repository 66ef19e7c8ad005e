// Verifies a fast path's own absorb decisions against float64 (ALGORITHM.md §4.3): the reference
// follows the checked trace (so both hold the same dictionary), and at every absorb each
// farthest-point pick and each nearest-row assignment must be optimal in float64 up to a tie of
// DECISION_EPS. A decision that differs from the reference's own choice is thus allowed only on
// a genuine tie; anything else (a wrong distance, a skipped row) fails with the token named.
import { absorbPending, randomSpawn, squaredDistance } from '../ovq/dictionary.js';
import { noveltyRoom, spawnCount } from '../ovq/growth.js';
import { normalizeRow } from '../ovq/read.js';
import { createOvqState, STORAGE } from '../ovq/state.js';
import type { OvqConfig, OvqTrace, Seq } from '../ovq/types.js';

/**
 * The tie tolerance. A fast path rounds each key to float32 (|δk| ≤ 2⁻²⁴‖k‖), and its rows are
 * means of rounded keys; that moves a squared distance ‖k − μ‖² by at most ≈ 2·2⁻²⁴‖k‖·‖k − μ‖.
 * So a taken decision may trail the float64 optimum by
 *   ε = DECISION_EPS · ‖k‖ · (‖k − μ_taken‖ + ‖k − μ_best‖) + 1e-12 · max(1, ‖k‖²)
 * (DECISION_EPS = 1e-6 ≈ 17·2⁻²⁴: a margin over the rounding, and far below what any wrong
 * distance moves; the second term covers float64 rounding of exact ties).
 */
export const DECISION_EPS = 1e-6;

export type DecisionStats = {
  decisions: number;
  /** Decisions that differ from the float64 argmin/argmax (each a tie within DECISION_EPS). */
  ties: number;
  /** Largest float64 gap seen between a taken decision and the optimal one. */
  maxGap: number;
};

/** Throws unless every decision in `trace` is float64-optimal up to DECISION_EPS. */
export function verifyDecisions(seq: Seq, config: OvqConfig, trace: OvqTrace): DecisionStats {
  const { k, v, seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const view = createOvqState({ keyDim: dk, valueDim: dv }, config);
  const state = view[STORAGE];
  const cfg = state.config;
  const C = cfg.chunkSize;
  const stats: DecisionStats = { decisions: 0, ties: 0, maxGap: 0 };
  const fail = (a: number, what: string): never => {
    throw new Error(`absorb ${a}: ${what}`);
  };
  const judge = (a: number, what: string, taken: number, best: number, keySq: number) => {
    // best is the float64 optimum: the nearest row's distance, or the farthest token's.
    const gap = Math.abs(taken - best);
    stats.decisions++;
    if (gap > 0) stats.ties++;
    stats.maxGap = Math.max(stats.maxGap, gap);
    const keyNorm = Math.sqrt(keySq);
    const eps =
      DECISION_EPS * keyNorm * (Math.sqrt(taken) + Math.sqrt(best)) + 1e-12 * Math.max(1, keySq);
    if (!(gap <= eps)) {
      fail(
        a,
        `${what}: float64 distance ${taken.toExponential(6)} vs optimal ${best.toExponential(6)}, gap ${gap.toExponential(3)} > ε = ${eps.toExponential(3)} (not a tie)`,
      );
    }
  };
  let absorb = 0;
  for (let t = 0; t < T; t++) {
    const slot = state.pendingCount;
    if (cfg.normalize) normalizeRow(k, t * dk, dk, state.pendingKeys, slot * dk);
    else for (let d = 0; d < dk; d++) state.pendingKeys[slot * dk + d] = k[t * dk + d];
    for (let d = 0; d < dv; d++) state.pendingValues[slot * dv + d] = v[t * dv + d];
    state.pendingCount++;
    state.tokensSeen++;
    if (state.pendingCount < C) continue;
    const a = absorb++;
    const record = trace[a];
    if (!record) fail(a, `the trace has only ${trace.length} absorbs`);
    const n = state.size;
    const pk = state.pendingKeys;
    const rows = state.centroidKeys;
    if (record.sizeBefore !== n)
      fail(a, `sizeBefore ${record.sizeBefore}; the dictionary has ${n}`);
    const m = spawnCount(cfg.growth, cfg.capacity, state.tokensSeen, n, C);
    // Novelty spawn (spawnDistance) may add up to `room` rows after the schedule's m.
    const lambda = cfg.spawnDistance;
    const room = noveltyRoom(lambda, cfg.capacity, n, m, C);
    const total = record.spawned.length;
    if (total < m || total > m + room)
      fail(
        a,
        room === 0
          ? `spawns ${total}; the schedule says ${m}`
          : `spawns ${total}; the schedule says ${m} and novelty spawn allows ${room} more`,
      );
    const keyNorm = (j: number) => squaredDistance(pk, j * dk, new Float64Array(dk), 0, dk);
    // Each token's distance to its nearest row, shrunk by every pick (farthest and novelty rank it).
    const dist = new Float64Array(C).fill(Number.POSITIVE_INFINITY);
    for (let j = 0; j < C; j++) {
      for (let i = 0; i < n; i++)
        dist[j] = Math.min(dist[j], squaredDistance(pk, j * dk, rows, i * dk, dk));
    }
    const picked = new Uint8Array(C);
    const take = (pick: number) => {
      picked[pick] = 1;
      for (let j = 0; j < C; j++)
        dist[j] = Math.min(dist[j], squaredDistance(pk, j * dk, pk, pick * dk, dk));
    };
    const farthestLeft = () => {
      let far = Number.NEGATIVE_INFINITY;
      for (let j = 0; j < C; j++) if (!picked[j]) far = Math.max(far, dist[j]);
      return far;
    };
    const checkFarthest = (s: number, pick: number, what: string) => {
      if (!(pick >= 0 && pick < C) || picked[pick]) fail(a, `${what} ${s} picks token ${pick}`);
      const far = farthestLeft();
      if (far === Number.POSITIVE_INFINITY) {
        // No rows yet: every unpicked token is at +∞ and the spec takes the lowest index.
        let lowest = 0;
        while (picked[lowest]) lowest++;
        stats.decisions++;
        if (pick !== lowest)
          fail(a, `${what} ${s} picks token ${pick}; with no rows the first unpicked is ${lowest}`);
      } else {
        judge(a, `${what} ${s} (token ${pick})`, dist[pick], far, keyNorm(pick));
      }
    };
    if (cfg.spawn === 'farthest') {
      for (let s = 0; s < m; s++) {
        checkFarthest(s, record.spawned[s], 'spawn');
        take(record.spawned[s]);
      }
    } else {
      const expected =
        cfg.spawn === 'first'
          ? Array.from({ length: m }, (_, j) => j)
          : randomSpawn(C, m, state.rngState).picks;
      if (expected.some((j, s) => record.spawned[s] !== j)) {
        fail(a, `spawned ${record.spawned.slice(0, m)}; '${cfg.spawn}' spawn takes ${expected}`);
      }
      for (let s = 0; s < m; s++) take(record.spawned[s]);
    }
    if (lambda !== undefined) {
      // A novelty pick is the farthest token left and lies beyond λ; the picks stop when the
      // farthest left is within λ or the room is used (each comparison up to a tie).
      const tieWith = (j: number, d: number) =>
        DECISION_EPS * Math.sqrt(keyNorm(j)) * (Math.sqrt(d) + Math.sqrt(lambda)) + 1e-12;
      for (let s = m; s < total; s++) {
        const pick = record.spawned[s];
        checkFarthest(s, pick, 'novelty spawn');
        stats.decisions++;
        if (!(dist[pick] > lambda - tieWith(pick, dist[pick])))
          fail(a, `novelty spawn ${s} (token ${pick}) at distance ${dist[pick]} ≤ λ = ${lambda}`);
        take(pick);
      }
      if (total < m + room) {
        for (let j = 0; j < C; j++) {
          if (picked[j] || dist[j] <= lambda + tieWith(j, dist[j])) continue;
          fail(a, `token ${j} at distance ${dist[j]} > λ = ${lambda} seeded no row (room left)`);
        }
      }
    }
    // Nearest row over the rows before this absorb's merges plus the new seeds.
    const seedOf = new Map(record.spawned.map((j, s) => [j, n + s]));
    const rowKey = (i: number): [ArrayLike<number>, number] =>
      i < n ? [rows, i * dk] : [pk, record.spawned[i - n] * dk];
    for (let j = 0; j < C; j++) {
      const taken = record.assignment[j];
      const seedRow = seedOf.get(j);
      if (seedRow !== undefined) {
        if (taken !== seedRow)
          fail(a, `seed token ${j} joins row ${taken}, not its own ${seedRow}`);
        continue;
      }
      if (!(Number.isInteger(taken) && taken >= 0 && taken < n + total))
        fail(a, `token ${j} joins row ${taken}`);
      let best = Number.POSITIVE_INFINITY;
      for (let i = 0; i < n + total; i++) {
        const [src, off] = rowKey(i);
        best = Math.min(best, squaredDistance(pk, j * dk, src, off, dk));
      }
      const [src, off] = rowKey(taken);
      judge(
        a,
        `token ${j} joins row ${taken}`,
        squaredDistance(pk, j * dk, src, off, dk),
        best,
        keyNorm(j),
      );
    }
    // Follow the checked decisions, so the next absorb starts from the same dictionary.
    absorbPending(view, record);
  }
  if (absorb !== trace.length)
    throw new Error(`the trace has ${trace.length} absorbs; the sequence makes ${absorb}`);
  return stats;
}
