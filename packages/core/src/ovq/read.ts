// The read of ALGORITHM.md §4.2 for one query in float64: one softmax over the dictionary rows
// (logit β·q̂·μ + ln c, or the Gaussian logit) and the pending tokens (count 1).
import { type OvqState, STORAGE } from './state.js';

/** Logit of one component: β(q̂·μ) or β(q̂·μ − ½‖μ‖²), plus ln(count). */
export function readLogit(
  q: ArrayLike<number>,
  qi: number,
  mu: ArrayLike<number>,
  mi: number,
  dim: number,
  beta: number,
  gaussian: boolean,
  logCount: number,
): number {
  let dotQ = 0;
  let norm = 0;
  for (let d = 0; d < dim; d++) {
    dotQ += q[qi + d] * mu[mi + d];
    norm += mu[mi + d] * mu[mi + d];
  }
  return beta * (gaussian ? dotQ - 0.5 * norm : dotQ) + logCount;
}

/**
 * Reads the state with the normalised query at q[qi…] into out[oi…]. `weights` receives the
 * softmax weights: dictionary rows first, then pending tokens (length size + pendingCount).
 */
export function readState(
  view: OvqState,
  q: ArrayLike<number>,
  qi: number,
  out: Float64Array,
  oi: number,
  weights: Float64Array,
): void {
  const state = view[STORAGE];
  const { keyDim, valueDim, size, pendingCount } = state;
  const beta = state.config.beta;
  const gaussian = state.config.read === 'gaussian';
  const keys = state.centroidKeys;
  const counts = state.counts;
  const total = size + pendingCount;
  for (let d = 0; d < valueDim; d++) out[oi + d] = 0;
  if (total === 0) return;
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < size; i++) {
    const l = readLogit(q, qi, keys, i * keyDim, keyDim, beta, gaussian, Math.log(counts[i]));
    weights[i] = l;
    if (l > max) max = l;
  }
  for (let s = 0; s < pendingCount; s++) {
    const l = readLogit(q, qi, state.pendingKeys, s * keyDim, keyDim, beta, gaussian, 0);
    weights[size + s] = l;
    if (l > max) max = l;
  }
  let sum = 0;
  for (let i = 0; i < total; i++) {
    weights[i] = Math.exp(weights[i] - max);
    sum += weights[i];
  }
  const values = state.centroidValues;
  for (let i = 0; i < total; i++) {
    const w = (weights[i] /= sum);
    const src = i < size ? values : state.pendingValues;
    const base = (i < size ? i : i - size) * valueDim;
    for (let d = 0; d < valueDim; d++) out[oi + d] += w * src[base + d];
  }
}

/** x / max(‖x‖, 1e-12) for one row, written to out[oi…]; returns the divisor. */
export function normalizeRow(
  x: ArrayLike<number>,
  xi: number,
  dim: number,
  out: Float64Array,
  oi: number,
): number {
  let sq = 0;
  for (let d = 0; d < dim; d++) sq += x[xi + d] * x[xi + d];
  const divisor = Math.max(Math.sqrt(sq), 1e-12);
  for (let d = 0; d < dim; d++) out[oi + d] = x[xi + d] / divisor;
  return divisor;
}
