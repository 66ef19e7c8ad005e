// Sliding-window attention as a band: with a small window W, a block of QB queries reads one
// contiguous run of at most QB + W − 1 keys, so each block is one score product, one exact
// softmax per row (no online rescaling) and one P·V product on @ovq/core's matmul kernel. The
// square blocks of blocked.ts / kernel.ts would compute 4–8× more scores than the band holds.
// The backward needs no forward pass: each block recomputes its P exactly, and the softmax
// correction D_t = dy_t·y_t equals Σ_s P_ts (dy_t·v_s), which the block has at hand.
// Softmax statistics (row max, sum, D) are float64, as in the other loops.
import { matmulABt } from '@ovq/core/kernels';
import { transposeRows } from '../common.js';

/** Windows up to this take the band loops (larger or unlimited windows: the square blocks). */
export const BAND_MAX_WINDOW = 256;

/** Queries per band block: about half the window (wasted scores ≈ QB/W), 16…64 rows. */
export function bandQueryBlock(W: number): number {
  return Math.max(16, Math.min(64, 8 * Math.ceil(W / 16)));
}

/**
 * Softmax of row r of S (scores before β, row length nc) over its keys [lo, hi], written back
 * as probabilities (0 outside). Returns the row's log-sum-exp.
 */
function softmaxRow(S: Float32Array, o: number, nc: number, lo: number, hi: number, beta: number) {
  let m = Number.NEGATIVE_INFINITY;
  for (let c = lo; c <= hi; c++) {
    const s = beta * S[o + c];
    if (s > m) m = s;
  }
  let sum = 0;
  for (let c = lo; c <= hi; c++) {
    const p = Math.exp(beta * S[o + c] - m);
    S[o + c] = p;
    sum += p;
  }
  const inv = 1 / sum;
  for (let c = 0; c < lo; c++) S[o + c] = 0;
  for (let c = lo; c <= hi; c++) S[o + c] *= inv;
  for (let c = hi + 1; c < nc; c++) S[o + c] = 0;
  return m + Math.log(sum);
}

/** Same contract as `tiledForward` in kernel.ts, for a finite window W. */
export function bandedForward(
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  T: number,
  n0: number,
  dk: number,
  dv: number,
  beta: number,
  W: number,
  out: Float32Array,
  lse: Float32Array | null,
): void {
  const QB = bandQueryBlock(W);
  const NC = QB + W - 1;
  const S = new Float32Array(QB * NC);
  const vT = new Float32Array(dv * NC);
  for (let i0 = 0; i0 < T; i0 += QB) {
    const nr = Math.min(QB, T - i0);
    const first = Math.max(0, n0 + i0 - W + 1);
    const nc = n0 + i0 + nr - first;
    matmulABt(q, i0 * dk, dk, nr, keys, first * dk, dk, nc, dk, S, 0, nc, false);
    for (let r = 0; r < nr; r++) {
      const self = n0 + i0 + r - first;
      const l = softmaxRow(S, r * nc, nc, Math.max(0, self - W + 1), self, beta);
      if (lse) lse[i0 + r] = l;
    }
    // out rows = P·V over the block's keys (Vᵀ tile: one contiguous operand).
    transposeRows(values, first, dv, nc, dv, vT);
    matmulABt(S, 0, nc, nr, vT, 0, nc, dv, nc, out, i0 * dv, dv, false);
  }
}

/**
 * Gradients of the band forward from an empty cache (same contract as `tiledBackward` in
 * kernel.ts but without lse / rowDot: gq is overwritten, gk and gv start at zero and are added to).
 * Per query block: P, dP = dY·Vᵀ, dS = β·P∘(dP − D), then dQ = dS·K, dK += dSᵀ·Q, dV += Pᵀ·dY.
 */
export function bandedBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dy: Float32Array,
  T: number,
  dk: number,
  dv: number,
  beta: number,
  W: number,
  gq: Float32Array,
  gk: Float32Array,
  gv: Float32Array,
): void {
  const QB = bandQueryBlock(W);
  const NC = QB + W - 1;
  const P = new Float32Array(QB * NC);
  const dS = new Float32Array(QB * NC);
  const PT = new Float32Array(NC * QB);
  const dST = new Float32Array(NC * QB);
  const kT = new Float32Array(dk * NC);
  const qT = new Float32Array(dk * QB);
  const dyT = new Float32Array(dv * QB);
  for (let i0 = 0; i0 < T; i0 += QB) {
    const nr = Math.min(QB, T - i0);
    const first = Math.max(0, i0 - W + 1);
    const nc = i0 + nr - first;
    matmulABt(q, i0 * dk, dk, nr, k, first * dk, dk, nc, dk, P, 0, nc, false);
    matmulABt(dy, i0 * dv, dv, nr, v, first * dv, dv, nc, dv, dS, 0, nc, false);
    for (let r = 0; r < nr; r++) {
      const o = r * nc;
      const self = i0 + r - first;
      const lo = Math.max(0, self - W + 1);
      softmaxRow(P, o, nc, lo, self, beta);
      let d = 0; // D_t = Σ_s P_ts dP_ts = dy_t·y_t
      for (let c = lo; c <= self; c++) d += P[o + c] * dS[o + c];
      for (let c = 0; c < lo; c++) dS[o + c] = 0;
      for (let c = lo; c <= self; c++) dS[o + c] = beta * P[o + c] * (dS[o + c] - d);
      for (let c = self + 1; c < nc; c++) dS[o + c] = 0;
    }
    transposeRows(k, first, dk, nc, dk, kT);
    matmulABt(dS, 0, nc, nr, kT, 0, nc, dk, nc, gq, i0 * dk, dk, false);
    transposeRows(P, 0, nc, nr, nc, PT);
    transposeRows(dS, 0, nc, nr, nc, dST);
    transposeRows(dy, i0, dv, nr, dv, dyT);
    transposeRows(q, i0, dk, nr, dk, qT);
    matmulABt(PT, 0, nr, nc, dyT, 0, nr, dv, nr, gv, first * dv, dv, true);
    matmulABt(dST, 0, nr, nc, qT, 0, nr, dk, nr, gk, first * dk, dk, true);
  }
}
