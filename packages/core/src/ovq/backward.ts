// Exact gradients of the float64 reference (ALGORITHM.md §5). Discrete decisions (spawns,
// assignments, counts, sizes) are constants. The reference keeps a snapshot of the dictionary at
// every chunk start (allowed for the ground truth); the chunked path undoes absorbs instead.
// With an initial state, its rows and pending tokens are differentiable inputs too (TBPTT).

import {
  checkStateGradient,
  finalShape,
  type OvqStateGradient,
  refuseDataDependentShape,
  type TbpttOptions,
} from '../tbptt/state-gradient.js';
import { requireFiniteArray, resolveOvqConfig, validateSeq } from '../validate.js';
import { normalizeRow, readLogit } from './read.js';
import { type OvqForwardOptions, startState, streamTokens } from './reference.js';
import type { OvqState } from './state.js';
import type { AbsorbRecord, OvqConfig, OvqTrace, ResolvedOvqConfig, Seq } from './types.js';

export type OvqGradients = { dq: Float64Array; dk: Float64Array; dv: Float64Array; dbeta: number };

/** dL/dx for x̂ = x / max(‖x‖, 1e-12), given dL/dx̂ and the saved divisor. */
export function normalizeBackward(
  xHat: ArrayLike<number>,
  dxHat: ArrayLike<number>,
  at: number,
  dim: number,
  divisor: number,
  rawNorm: number,
  dx: Float64Array,
): void {
  let proj = 0;
  // Below the clamp the divisor is a constant, so the projection term vanishes.
  if (rawNorm > 1e-12) for (let d = 0; d < dim; d++) proj += xHat[at + d] * dxHat[at + d];
  for (let d = 0; d < dim; d++) dx[at + d] = (dxHat[at + d] - xHat[at + d] * proj) / divisor;
}

type Snapshot = { size: number; counts: Float64Array; keys: Float64Array; values: Float64Array };

/** Back-propagates G (grad w.r.t. rows after an absorb) through that absorb (mean or EMA). */
function absorbBackward(
  record: AbsorbRecord,
  before: Snapshot,
  config: ResolvedOvqConfig,
  chunkStart: number,
  gk: Float64Array,
  gv: Float64Array,
  dkHat: Float64Array,
  dv: Float64Array,
  keyDim: number,
  valueDim: number,
): void {
  const sizeAfter = record.sizeBefore + record.spawned.length;
  const seeds = new Int32Array(sizeAfter).fill(-1);
  record.spawned.forEach((j, s) => {
    seeds[record.sizeBefore + s] = j;
  });
  const members: number[][] = Array.from({ length: sizeAfter }, () => []);
  record.assignment.forEach((row, j) => {
    if (seeds[row] !== j) members[row].push(j);
  });
  for (let i = 0; i < sizeAfter; i++) {
    const m = members[i].length;
    if (m > 0) {
      const cOld = i < record.sizeBefore ? before.counts[i] : 1;
      const cNew = cOld + m;
      const toMember = config.update.kind === 'mean' ? 1 / cNew : config.update.rate / m;
      const toSelf = config.update.kind === 'mean' ? cOld / cNew : 1 - config.update.rate;
      for (const j of members[i]) {
        const t = chunkStart + j;
        for (let d = 0; d < keyDim; d++) dkHat[t * keyDim + d] += gk[i * keyDim + d] * toMember;
        for (let d = 0; d < valueDim; d++) dv[t * valueDim + d] += gv[i * valueDim + d] * toMember;
      }
      for (let d = 0; d < keyDim; d++) gk[i * keyDim + d] *= toSelf;
      for (let d = 0; d < valueDim; d++) gv[i * valueDim + d] *= toSelf;
    }
    if (i >= record.sizeBefore) {
      // A spawned row started as a copy of its seed token.
      const t = chunkStart + seeds[i];
      for (let d = 0; d < keyDim; d++) {
        dkHat[t * keyDim + d] += gk[i * keyDim + d];
        gk[i * keyDim + d] = 0;
      }
      for (let d = 0; d < valueDim; d++) {
        dv[t * valueDim + d] += gv[i * valueDim + d];
        gv[i * valueDim + d] = 0;
      }
    }
  }
}

export type OvqReferenceBackwardOptions = OvqForwardOptions & TbpttOptions;

/**
 * Gradients of L = Σ dOutput ⊙ output + ⟨dFinalState, final state⟩ with respect to q, k, v, β
 * and the initial state's continuous parts, for the forward pass of
 * `ovqAttentionReference(seq, config, options)` (from `options.initialState`, or empty).
 */
export function ovqAttentionReferenceBackward(
  seq: Seq,
  config: OvqConfig,
  dOutput: ArrayLike<number>,
  options: OvqReferenceBackwardOptions = {},
): OvqGradients & { dInitialState: OvqStateGradient<Float64Array>; trace: OvqTrace } {
  const resolved = resolveOvqConfig(config);
  const { seqLen: T, keyDim, valueDim } = validateSeq(seq);
  requireFiniteArray('dOutput', dOutput, T * valueDim, 'seqLen*valueDim');
  const state = startState(options, resolved, keyDim, valueDim);
  refuseDataDependentShape(resolved, options.dFinalState);
  const dFinal = checkStateGradient(
    'options.dFinalState',
    options.dFinalState,
    finalShape(resolved, T, state, keyDim, valueDim),
  );
  const { chunkSize: C, beta, normalize } = resolved;
  const gaussian = resolved.read === 'gaussian';
  // Tokens are indexed on a virtual axis u = P0 + t: the initial pending tokens (already
  // normalised, never read again) come first, so chunk j is exactly u ∈ [jC, (j+1)C).
  const P0 = state.pendingCount;
  const n0 = state.size;
  const U = P0 + T;

  // Forward, snapshotting the dictionary at every chunk start.
  const snapshots: Snapshot[] = [];
  const snap = (s: OvqState) =>
    snapshots.push({
      size: s.size,
      counts: s.counts.slice(),
      keys: s.centroidKeys.slice(),
      values: s.centroidValues.slice(),
    });
  const kHat = new Float64Array(U * keyDim);
  const vAll = new Float64Array(U * valueDim);
  kHat.set(state.pendingKeys.subarray(0, P0 * keyDim));
  vAll.set(state.pendingValues.subarray(0, P0 * valueDim));
  if (P0 > 0) snap(state);
  const trace: OvqTrace = [];
  streamTokens(state, seq.q, seq.k, seq.v, T, trace, options.replay, (s, t) => {
    if ((P0 + t) % C === 0) snap(s);
  });

  // Normalised inputs and their divisors, for the read backward and the final chain rule.
  const qHat = new Float64Array(T * keyDim);
  const qDiv = new Float64Array(T).fill(1);
  const kDiv = new Float64Array(T).fill(1);
  for (let t = 0; t < T; t++) {
    const u = P0 + t;
    if (normalize) {
      qDiv[t] = normalizeRow(seq.q, t * keyDim, keyDim, qHat, t * keyDim);
      kDiv[t] = normalizeRow(seq.k, t * keyDim, keyDim, kHat, u * keyDim);
    } else {
      for (let d = 0; d < keyDim; d++) {
        qHat[t * keyDim + d] = seq.q[t * keyDim + d];
        kHat[u * keyDim + d] = seq.k[t * keyDim + d];
      }
    }
    for (let d = 0; d < valueDim; d++) vAll[u * valueDim + d] = seq.v[t * valueDim + d];
  }

  const dqHat = new Float64Array(T * keyDim);
  const dkHat = new Float64Array(U * keyDim);
  const dvAll = new Float64Array(U * valueDim);
  let dbeta = 0;
  const gk = new Float64Array(state.size * keyDim);
  const gv = new Float64Array(state.size * valueDim);
  // The final state's gradient seeds G (its rows) and the tokens still pending at the end.
  if (dFinal.keys) gk.set(dFinal.keys);
  if (dFinal.values) gv.set(dFinal.values);
  const pendStart = U - state.pendingCount;
  if (dFinal.pendingKeys) {
    for (let i = 0; i < dFinal.pendingKeys.length; i++) {
      dkHat[pendStart * keyDim + i] += dFinal.pendingKeys[i];
    }
  }
  if (dFinal.pendingValues) {
    for (let i = 0; i < dFinal.pendingValues.length; i++) {
      dvAll[pendStart * valueDim + i] += dFinal.pendingValues[i];
    }
  }
  const logits = new Float64Array(state.size + C);
  const y = new Float64Array(valueDim);

  for (let j = snapshots.length - 1; j >= 0; j--) {
    const start = j * C;
    const end = Math.min(U, start + C);
    const snap = snapshots[j];
    if (j < trace.length) {
      absorbBackward(trace[j], snap, resolved, start, gk, gv, dkHat, dvAll, keyDim, valueDim);
    }
    const n = snap.size;
    for (let u = Math.max(start, P0); u < end; u++) {
      const t = u - P0;
      const total = n + (u - start + 1);
      let max = Number.NEGATIVE_INFINITY;
      for (let i = 0; i < total; i++) {
        const l =
          i < n
            ? readLogit(
                qHat,
                t * keyDim,
                snap.keys,
                i * keyDim,
                keyDim,
                beta,
                gaussian,
                Math.log(snap.counts[i]),
              )
            : readLogit(
                qHat,
                t * keyDim,
                kHat,
                (start + i - n) * keyDim,
                keyDim,
                beta,
                gaussian,
                0,
              );
        logits[i] = l;
        if (l > max) max = l;
      }
      let sum = 0;
      for (let i = 0; i < total; i++) sum += logits[i] = Math.exp(logits[i] - max);
      y.fill(0);
      for (let i = 0; i < total; i++) {
        const w = (logits[i] /= sum);
        const [src, at] = i < n ? [snap.values, i * valueDim] : [vAll, (start + i - n) * valueDim];
        for (let d = 0; d < valueDim; d++) y[d] += w * src[at + d];
      }
      let gy = 0;
      for (let d = 0; d < valueDim; d++) gy += dOutput[t * valueDim + d] * y[d];
      for (let i = 0; i < total; i++) {
        const w = logits[i];
        const isRow = i < n;
        const [vals, vAt] = isRow
          ? [snap.values, i * valueDim]
          : [vAll, (start + i - n) * valueDim];
        const [keys, kAt] = isRow ? [snap.keys, i * keyDim] : [kHat, (start + i - n) * keyDim];
        const dV = isRow ? gv : dvAll;
        const dK = isRow ? gk : dkHat;
        let gValue = 0;
        for (let d = 0; d < valueDim; d++) {
          const g = dOutput[t * valueDim + d];
          gValue += g * vals[vAt + d];
          dV[vAt + d] += w * g;
        }
        const dl = w * (gValue - gy);
        let qk = 0;
        let kk = 0;
        for (let d = 0; d < keyDim; d++) {
          const qd = qHat[t * keyDim + d];
          const kd = keys[kAt + d];
          qk += qd * kd;
          kk += kd * kd;
          dqHat[t * keyDim + d] += dl * beta * kd;
          dK[kAt + d] += dl * beta * (gaussian ? qd - kd : qd);
        }
        dbeta += dl * (gaussian ? qk - 0.5 * kk : qk);
      }
    }
  }

  // G now holds ∂L/∂(rows at the start); pending gradients are w.r.t. the stored k̂.
  const dInitialState: OvqStateGradient<Float64Array> = {
    keys: gk.slice(0, n0 * keyDim),
    values: gv.slice(0, n0 * valueDim),
    pendingKeys: dkHat.slice(0, P0 * keyDim),
    pendingValues: dvAll.slice(0, P0 * valueDim),
  };
  const dv = dvAll.slice(P0 * valueDim);
  if (!normalize) {
    return { dq: dqHat, dk: dkHat.slice(P0 * keyDim), dv, dbeta, dInitialState, trace };
  }
  const dq = new Float64Array(T * keyDim);
  const dk = new Float64Array(T * keyDim);
  const kHatSeq = kHat.subarray(P0 * keyDim);
  const dkHatSeq = dkHat.subarray(P0 * keyDim);
  for (let t = 0; t < T; t++) {
    normalizeBackward(qHat, dqHat, t * keyDim, keyDim, qDiv[t], rawNorm(seq.q, t, keyDim), dq);
    normalizeBackward(
      kHatSeq,
      dkHatSeq,
      t * keyDim,
      keyDim,
      kDiv[t],
      rawNorm(seq.k, t, keyDim),
      dk,
    );
  }
  return { dq, dk, dv, dbeta, dInitialState, trace };
}

function rawNorm(x: ArrayLike<number>, t: number, dim: number): number {
  let s = 0;
  for (let d = 0; d < dim; d++) s += x[t * dim + d] ** 2;
  return Math.sqrt(s);
}
