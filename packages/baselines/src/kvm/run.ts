// Drives the KVM engine over a call: the streaming forward (from a state) and the backward (from an
// empty state) with row snapshots every `checkpointEvery` evictions, replaying the others.
import { type FloatArray, normalizeRows, normalizeRowsBackward, type SeqInput } from '../common.js';
import {
  copyRows,
  type EvictRecord,
  evictBackward,
  evictTokens,
  makeRows,
  type RowGrads,
  type Rows,
  readQuery,
  readQueryBackward,
} from './engine.js';
import { segmentBackward, segmentForward } from './segment.js';
import type { KvmState, ResolvedKvmConfig } from './state.js';

type Ctor<A> = new (n: number) => A;

/** Tokens of block X that are not sinks (they leave the window together). */
function leavingCount(c: ResolvedKvmConfig, X: number): number {
  const B = c.blockSize;
  return Math.max(0, (X + 1) * B - Math.max(X * B, c.sinks));
}

/** The forward pass from `base`; returns outputs and the next state (Float64 arrays). */
export function runForward<A extends FloatArray>(
  ctor: Ctor<A>,
  seq: SeqInput,
  base: KvmState,
  out: A,
  /** Float32 only: each run of queries between evictions as one matmul block (segment.ts). */
  blockedReads = false,
): KvmState {
  const c = base.config;
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const B = c.blockSize;
  const blocks = c.window / B;
  const q = new ctor(T * dk);
  const k = new ctor(T * dk);
  normalizeRows(seq.q, T, dk, q);
  normalizeRows(seq.k, T, dk, k);
  const sinkK = new ctor((base.sinkCount + T) * dk);
  const sinkV = new ctor((base.sinkCount + T) * dv);
  sinkK.set(base.sinkKeys);
  sinkV.set(base.sinkValues);
  let ns = base.sinkCount;
  const tokK = new ctor((base.windowCount + T) * dk);
  const tokV = new ctor((base.windowCount + T) * dv);
  tokK.set(base.windowKeys);
  tokV.set(base.windowValues);
  let w0 = 0;
  let w1 = base.windowCount; // window = tok[w0, w1)
  const rows = makeRows(ctor, dk, dv, base.rowCount + 16);
  rows.K.set(base.rowKeys);
  rows.U.set(base.rowValues);
  rows.rho.set(base.rowRadii);
  rows.n = base.rowCount;
  let compressed = base.compressed;
  let p = new ctor(0);
  const sinkEnd = new Int32Array(blockedReads ? T : 0);
  const windowEnd = new Int32Array(blockedReads ? T : 0);
  let t0 = 0;
  for (let t = 0; t < T; t++) {
    const pos = base.position + t;
    if (pos < c.sinks) {
      sinkK.set(k.subarray(t * dk, (t + 1) * dk), ns * dk);
      sinkV.set(seq.v.subarray(t * dv, (t + 1) * dv), ns * dv);
      ns++;
    } else {
      tokK.set(k.subarray(t * dk, (t + 1) * dk), w1 * dk);
      tokV.set(seq.v.subarray(t * dv, (t + 1) * dv), w1 * dv);
      w1++;
    }
    const X = Math.floor(pos / B) - blocks + 1;
    const evicts = pos % B === B - 1 && X >= 0 && leavingCount(c, X) > 0;
    if (blockedReads) {
      // Queries up to the next eviction (or the end) read the same rows: one block.
      sinkEnd[t] = ns;
      windowEnd[t] = w1;
      if (evicts || t === T - 1) {
        const f32 = (x: A) => x as unknown as Float32Array;
        segmentForward(
          f32(q),
          t0,
          t,
          c.beta,
          f32(sinkK),
          f32(sinkV),
          sinkEnd.subarray(t0, t + 1),
          rows as unknown as Rows<Float32Array>,
          f32(tokK),
          f32(tokV),
          w0,
          windowEnd.subarray(t0, t + 1),
          f32(out),
        );
        t0 = t + 1;
      }
    } else {
      if (p.length < ns + rows.n + w1 - w0) p = new ctor(2 * (ns + rows.n + w1 - w0));
      readQuery(q, t * dk, c.beta, sinkK, sinkV, ns, rows, tokK, tokV, w0, w1 - 1, p, out, t * dv);
    }
    if (evicts) {
      const m = leavingCount(c, X);
      compressed += m;
      evictTokens(rows, tokK, tokV, w0, m, compressed, c);
      w0 += m;
    }
  }
  const f64 = (x: FloatArray, a: number, b: number) => Float64Array.from(x.subarray(a, b));
  return {
    ...base,
    position: base.position + T,
    compressed,
    sinkCount: ns,
    sinkKeys: f64(sinkK, 0, ns * dk),
    sinkValues: f64(sinkV, 0, ns * dv),
    rowCount: rows.n,
    rowKeys: f64(rows.K, 0, rows.n * dk),
    rowValues: f64(rows.U, 0, rows.n * dv),
    rowRadii: f64(rows.rho, 0, rows.n),
    windowCount: w1 - w0,
    windowKeys: f64(tokK, w0 * dk, w1 * dk),
    windowValues: f64(tokV, w0 * dv, w1 * dv),
  };
}

export type KvmGradients<A> = { dq: A; dk: A; dv: A };

/**
 * Exact gradients from an empty state (discrete choices constant). Rows after every
 * `checkpointEvery`-th eviction are kept; the rows in between are recomputed from the nearest
 * checkpoint when the reverse sweep reaches them (1 = keep every version).
 */
export function runBackward<A extends FloatArray>(
  ctor: Ctor<A>,
  seq: SeqInput,
  c: ResolvedKvmConfig,
  dOutput: FloatArray,
  checkpointEvery: (evictions: number) => number,
  /** Float32 only: each run of queries between evictions as one matmul block (segment.ts). */
  blockedReads = false,
): KvmGradients<A> {
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const B = c.blockSize;
  const blocks = c.window / B;
  const q = new ctor(T * dk);
  const k = new ctor(T * dk);
  const qNorm = normalizeRows(seq.q, T, dk, q);
  const kNorm = normalizeRows(seq.k, T, dk, k);
  const v = new ctor(T * dv);
  v.set(seq.v);
  const dy = new ctor(T * dv);
  dy.set(dOutput);
  // Eviction schedule: after token t, tokens [first, first+m) leave; τ after it.
  const evictAfter: number[] = [];
  const evictFirst: number[] = [];
  const evictCount: number[] = [];
  const evictTau: number[] = [];
  let tau = 0;
  for (let t = 0; t < T; t++) {
    const X = Math.floor(t / B) - blocks + 1;
    if (t % B === B - 1 && X >= 0 && leavingCount(c, X) > 0) {
      const m = leavingCount(c, X);
      tau += m;
      evictAfter.push(t);
      evictFirst.push(Math.max(X * B, c.sinks));
      evictCount.push(m);
      evictTau.push(tau);
    }
  }
  const E = evictAfter.length;
  const K = Math.max(1, checkpointEvery(E));
  const records: EvictRecord[] = [];
  const checkpoints = new Map<number, Rows<A>>();
  const rows = makeRows(ctor, dk, dv, 16);
  checkpoints.set(0, copyRows(rows));
  for (let e = 0; e < E; e++) {
    records.push(evictTokens(rows, k, v, evictFirst[e], evictCount[e], evictTau[e], c));
    if ((e + 1) % K === 0) checkpoints.set(e + 1, copyRows(rows));
  }
  const finalN = rows.n;
  // Rows after e evictions: from the checkpoint cache or replayed from the segment start.
  let segment = new Map<number, Rows<A>>();
  const rowsAt = (e: number): Rows<A> => {
    const hit = checkpoints.get(e) ?? segment.get(e);
    if (hit) return hit;
    const e0 = e - (e % K);
    segment = new Map();
    const r = copyRows(checkpoints.get(e0)!);
    for (let x = e0; x < Math.min(E, e0 + K); x++) {
      evictTokens(r, k, v, evictFirst[x], evictCount[x], evictTau[x], c);
      segment.set(x + 1, copyRows(r));
    }
    return segment.get(e)!;
  };
  const g: RowGrads<A> = {
    gK: new ctor(finalN * dk),
    gU: new ctor(finalN * dv),
    gRho: new ctor(finalN),
  };
  const gq = new ctor(T * dk);
  const gk = new ctor(T * dk);
  const gv = new ctor(T * dv);
  const y = new ctor(dv);
  let p = new ctor(0);
  if (blockedReads) {
    // Segment e: tokens (evictAfter[e−1], evictAfter[e]] read the rows after e evictions; its
    // reads' gradients are complete before eviction e−1 is undone.
    const f32 = (x: A) => x as unknown as Float32Array;
    let tEnd = T - 1;
    for (let e = E; e >= 0; e--) {
      const tStart = e === 0 ? 0 : evictAfter[e - 1] + 1;
      if (tStart <= tEnd) {
        const w0 = Math.max(c.sinks, e === 0 ? 0 : evictFirst[e - 1] + evictCount[e - 1]);
        segmentBackward(
          f32(q),
          f32(k),
          f32(v),
          f32(dy),
          tStart,
          tEnd,
          c.sinks,
          rowsAt(e) as unknown as Rows<Float32Array>,
          w0,
          c.beta,
          f32(gq),
          f32(gk),
          f32(gv),
          g as unknown as RowGrads<Float32Array>,
        );
      }
      if (e > 0)
        evictBackward(rowsAt(e - 1), rowsAt(e), records[e - 1], k, v, evictFirst[e - 1], g, gk, gv);
      tEnd = tStart - 1;
    }
    normalizeRowsBackward(q, qNorm, T, dk, gq);
    normalizeRowsBackward(k, kNorm, T, dk, gk);
    return { dq: gq, dk: gk, dv: gv };
  }
  let e = E;
  for (let t = T - 1; t >= 0; t--) {
    while (e > 0 && evictAfter[e - 1] >= t) {
      evictBackward(rowsAt(e - 1), rowsAt(e), records[e - 1], k, v, evictFirst[e - 1], g, gk, gv);
      e--;
    }
    const r = rowsAt(e);
    const ns = Math.min(t + 1, c.sinks);
    const w0 = Math.max(c.sinks, e === 0 ? 0 : evictFirst[e - 1] + evictCount[e - 1]);
    const w1 = t >= c.sinks ? t : w0 - 1;
    if (p.length < ns + r.n + w1 - w0 + 1) p = new ctor(2 * (ns + r.n + w1 - w0 + 1));
    readQuery(q, t * dk, c.beta, k, v, ns, r, k, v, w0, w1, p, y, 0);
    readQueryBackward(q, t * dk, c.beta, ns, r, k, v, w0, w1, p, y, dy, t * dv, gq, gk, gv, g);
  }
  normalizeRowsBackward(q, qNorm, T, dk, gq);
  normalizeRowsBackward(k, kNorm, T, dk, gk);
  return { dq: gq, dk: gk, dv: gv };
}
