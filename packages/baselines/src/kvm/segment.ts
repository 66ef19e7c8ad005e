// The backward of a run of queries that read the same row set (KVM rows only change at block
// ends): one [queries × keys] block over [sinks; rows; window] on @ovq/core's matmul instead of
// one scalar read per query. Same sums as readQuery/readQueryBackward (engine.ts), in another
// order: P is recomputed exactly (the block holds every key of its queries) and the softmax
// correction D_t = Σ_s P_ts dP_ts needs no forward output.
import { matmulABt } from '@ovq/core/kernels';
import { transposeRows } from '../common.js';
import type { RowGrads, Rows } from './engine.js';

/**
 * Gradients of the reads of queries t0…t1 (unit q, k; rows `r` fixed): token t reads sinks
 * s < min(t + 1, sinks), every row, and window tokens w0…t. Writes gq rows t0…t1 and adds to gk,
 * gv (sinks and window tokens) and the row gradients g.
 */
export function segmentBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dy: Float32Array,
  t0: number,
  t1: number,
  sinks: number,
  r: Rows<Float32Array>,
  w0: number,
  beta: number,
  gq: Float32Array,
  gk: Float32Array,
  gv: Float32Array,
  g: RowGrads<Float32Array>,
): void {
  const { dk, dv, n } = r;
  const nr = t1 - t0 + 1;
  const S = Math.min(t1 + 1, sinks);
  const nw = Math.max(0, t1 - w0 + 1);
  const nk = S + n + nw;
  // Keys and values of the block: [sinks; rows (values ρ·U); window tokens].
  const Kall = new Float32Array(nk * dk);
  const Vall = new Float32Array(nk * dv);
  Kall.set(k.subarray(0, S * dk));
  Kall.set(r.K.subarray(0, n * dk), S * dk);
  Kall.set(k.subarray(w0 * dk, (w0 + nw) * dk), (S + n) * dk);
  Vall.set(v.subarray(0, S * dv));
  for (let i = 0; i < n; i++) {
    const rho = r.rho[i];
    for (let x = 0; x < dv; x++) Vall[(S + i) * dv + x] = rho * r.U[i * dv + x];
  }
  Vall.set(v.subarray(w0 * dv, (w0 + nw) * dv), (S + n) * dv);
  const P = new Float32Array(nr * nk);
  const dS = new Float32Array(nr * nk);
  matmulABt(q, t0 * dk, dk, nr, Kall, 0, dk, nk, dk, P, 0, nk, false);
  matmulABt(dy, t0 * dv, dv, nr, Vall, 0, dv, nk, dv, dS, 0, nk, false);
  for (let a = 0; a < nr; a++) {
    const t = t0 + a;
    const o = a * nk;
    // Valid keys: sinks [0, min(t+1, S)), rows, window [S+n, S+n+(t−w0+1)).
    const sEnd = Math.min(t + 1, S);
    const wEnd = S + n + Math.max(0, Math.min(nw, t - w0 + 1));
    let m = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < sEnd; c++) m = Math.max(m, beta * P[o + c]);
    for (let c = S; c < wEnd; c++) m = Math.max(m, beta * P[o + c]);
    let sum = 0;
    for (let c = 0; c < nk; c++) {
      const valid = c < sEnd || (c >= S && c < wEnd);
      const p = valid ? Math.exp(beta * P[o + c] - m) : 0;
      P[o + c] = p;
      sum += p;
    }
    const inv = 1 / sum;
    let d = 0;
    for (let c = 0; c < nk; c++) {
      P[o + c] *= inv;
      d += P[o + c] * dS[o + c];
    }
    for (let c = 0; c < nk; c++) dS[o + c] = beta * P[o + c] * (dS[o + c] - d);
  }
  // dq = dS·Kall; dKall = dSᵀ·Q; dVall = Pᵀ·dY (each as A·Bᵀ against a transposed operand).
  const KT = new Float32Array(dk * nk);
  transposeRows(Kall, 0, dk, nk, dk, KT);
  matmulABt(dS, 0, nk, nr, KT, 0, nk, dk, nk, gq, t0 * dk, dk, false);
  const PT = new Float32Array(nk * nr);
  const dST = new Float32Array(nk * nr);
  const QT = new Float32Array(dk * nr);
  const dYT = new Float32Array(dv * nr);
  transposeRows(P, 0, nk, nr, nk, PT);
  transposeRows(dS, 0, nk, nr, nk, dST);
  transposeRows(q, t0, dk, nr, dk, QT);
  transposeRows(dy, t0, dv, nr, dv, dYT);
  const dK = new Float32Array(nk * dk);
  const dV = new Float32Array(nk * dv);
  matmulABt(dST, 0, nr, nk, QT, 0, nr, dk, nr, dK, 0, dk, false);
  matmulABt(PT, 0, nr, nk, dYT, 0, nr, dv, nr, dV, 0, dv, false);
  for (let s = 0; s < S; s++) {
    for (let x = 0; x < dk; x++) gk[s * dk + x] += dK[s * dk + x];
    for (let x = 0; x < dv; x++) gv[s * dv + x] += dV[s * dv + x];
  }
  for (let i = 0; i < n; i++) {
    const rho = r.rho[i];
    const a = (S + i) * dk;
    const b = (S + i) * dv;
    for (let x = 0; x < dk; x++) g.gK[i * dk + x] += dK[a + x];
    let du = 0;
    for (let x = 0; x < dv; x++) {
      g.gU[i * dv + x] += rho * dV[b + x];
      du += r.U[i * dv + x] * dV[b + x];
    }
    g.gRho[i] += du;
  }
  for (let j = 0; j < nw; j++) {
    const a = (S + n + j) * dk;
    const b = (S + n + j) * dv;
    for (let x = 0; x < dk; x++) gk[(w0 + j) * dk + x] += dK[a + x];
    for (let x = 0; x < dv; x++) gv[(w0 + j) * dv + x] += dV[b + x];
  }
}

/**
 * Outputs of queries t0…t1 (row a = t − t0) reading the same rows: token t reads sinks
 * [0, sinkEnd[a]), every row, and window tokens [w0, windowEnd[a]) of tokK / tokV. Writes out
 * rows t0…t1.
 */
export function segmentForward(
  q: Float32Array,
  t0: number,
  t1: number,
  beta: number,
  sinkK: Float32Array,
  sinkV: Float32Array,
  sinkEnd: Int32Array,
  r: Rows<Float32Array>,
  tokK: Float32Array,
  tokV: Float32Array,
  w0: number,
  windowEnd: Int32Array,
  out: Float32Array,
): void {
  const { dk, dv, n } = r;
  const nr = t1 - t0 + 1;
  const S = sinkEnd[nr - 1];
  const nw = Math.max(0, windowEnd[nr - 1] - w0);
  const nk = S + n + nw;
  const Kall = new Float32Array(nk * dk);
  const VT = new Float32Array(dv * nk); // values transposed: [sinks; ρ·U; window]
  Kall.set(sinkK.subarray(0, S * dk));
  Kall.set(r.K.subarray(0, n * dk), S * dk);
  Kall.set(tokK.subarray(w0 * dk, (w0 + nw) * dk), (S + n) * dk);
  for (let s = 0; s < S; s++) for (let x = 0; x < dv; x++) VT[x * nk + s] = sinkV[s * dv + x];
  for (let i = 0; i < n; i++) {
    const rho = r.rho[i];
    for (let x = 0; x < dv; x++) VT[x * nk + S + i] = rho * r.U[i * dv + x];
  }
  for (let j = 0; j < nw; j++)
    for (let x = 0; x < dv; x++) VT[x * nk + S + n + j] = tokV[(w0 + j) * dv + x];
  const P = new Float32Array(nr * nk);
  matmulABt(q, t0 * dk, dk, nr, Kall, 0, dk, nk, dk, P, 0, nk, false);
  for (let a = 0; a < nr; a++) {
    const o = a * nk;
    const sEnd = sinkEnd[a];
    const wEnd = S + n + Math.max(0, windowEnd[a] - w0);
    let m = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < sEnd; c++) m = Math.max(m, beta * P[o + c]);
    for (let c = S; c < wEnd; c++) m = Math.max(m, beta * P[o + c]);
    let sum = 0;
    for (let c = 0; c < nk; c++) {
      const p = c < sEnd || (c >= S && c < wEnd) ? Math.exp(beta * P[o + c] - m) : 0;
      P[o + c] = p;
      sum += p;
    }
    const inv = 1 / sum;
    for (let c = 0; c < nk; c++) P[o + c] *= inv;
  }
  matmulABt(P, 0, nk, nr, VT, 0, nk, dv, nk, out, t0 * dv, dv, false);
}
