// The tiled softmax on @ovq/core's matmul kernel (WASM SIMD): the same flash-attention loops as
// kernel.ts, in larger blocks (SOFTMAX_QUERY_BLOCK queries × SOFTMAX_KEY_BLOCK keys) so each
// kernel call's copy into WASM memory is paid over ~1M multiply-adds. Every product is one
// C = A·Bᵀ call; the right-hand operands that must be transposed (values, keys, queries, dY) are
// transposed once per call into per-block tiles, so each block's operand is one contiguous span.
// Softmax statistics stay in float64 (online max and sum), as in kernel.ts.
import { matmulABt } from '@ovq/core/kernels';
import { transposeRows } from '../common.js';

/** Queries per block. */
export const SOFTMAX_QUERY_BLOCK = 128;
/** Keys per block. */
export const SOFTMAX_KEY_BLOCK = 256;

/**
 * Rows [0, n) of x ([n, m] row-major) as per-block transposed tiles: tile b holds rows
 * [b·bs, b·bs + bs) as out[b·m·bs + y·bs + c] = x[(b·bs + c)·m + y] (padding rows are 0).
 */
function transposeBlocks(x: Float32Array, n: number, m: number, bs: number): Float32Array {
  const blocks = Math.ceil(n / bs);
  const out = new Float32Array(blocks * m * bs);
  for (let t = 0; t < n; t++) {
    const b = (t / bs) | 0;
    const base = b * m * bs + (t - b * bs);
    const row = t * m;
    for (let y = 0; y < m; y++) out[base + y * bs] = x[row + y];
  }
  return out;
}

/** Same contract as `tiledForward` in kernel.ts. */
export function blockedForward(
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
  const QB = SOFTMAX_QUERY_BLOCK;
  const KB = SOFTMAX_KEY_BLOCK;
  const vT = transposeBlocks(values, n0 + T, dv, KB);
  const S = new Float32Array(QB * KB);
  const acc = new Float32Array(QB * dv);
  const rowMax = new Float64Array(QB);
  const rowSum = new Float64Array(QB);
  for (let i0 = 0; i0 < T; i0 += QB) {
    const nr = Math.min(QB, T - i0);
    acc.fill(0);
    rowMax.fill(Number.NEGATIVE_INFINITY);
    rowSum.fill(0);
    const firstKey = Math.max(0, n0 + i0 - W + 1);
    const lastKey = n0 + i0 + nr - 1;
    for (let j0 = firstKey - (firstKey % KB); j0 <= lastKey; j0 += KB) {
      const nc = Math.min(KB, lastKey - j0 + 1);
      matmulABt(q, i0 * dk, dk, nr, keys, j0 * dk, dk, nc, dk, S, 0, KB, false);
      for (let r = 0; r < nr; r++) {
        const self = n0 + i0 + r;
        // Valid keys of this row inside the block: [lo, hi] (causal and window); the rest get p = 0.
        const lo = Math.max(0, self - W + 1 - j0);
        const hi = Math.min(nc - 1, self - j0);
        const o = r * KB;
        if (lo > hi) {
          S.fill(0, o, o + nc);
          continue;
        }
        let m = rowMax[r];
        for (let c = lo; c <= hi; c++) {
          const s = beta * S[o + c];
          if (s > m) m = s;
        }
        const rescale = Math.exp(rowMax[r] - m);
        if (rescale !== 1) {
          const a = r * dv;
          for (let y = 0; y < dv; y++) acc[a + y] *= rescale;
        }
        let sum = rowSum[r] * rescale;
        for (let c = 0; c < lo; c++) S[o + c] = 0;
        for (let c = lo; c <= hi; c++) {
          const p = Math.exp(beta * S[o + c] - m);
          S[o + c] = p;
          sum += p;
        }
        for (let c = hi + 1; c < nc; c++) S[o + c] = 0;
        rowMax[r] = m;
        rowSum[r] = sum;
      }
      // acc += P·V: P [nr, nc] times the transpose of this block's Vᵀ tile [dv, KB].
      matmulABt(S, 0, KB, nr, vT, (j0 / KB) * dv * KB, KB, dv, nc, acc, 0, dv, true);
    }
    for (let r = 0; r < nr; r++) {
      const i = i0 + r;
      const inv = 1 / rowSum[r];
      for (let y = 0; y < dv; y++) out[i * dv + y] = acc[r * dv + y] * inv;
      if (lse) lse[i] = rowMax[r] + Math.log(rowSum[r]);
    }
  }
}

/** Same contract as `tiledBackward` in kernel.ts (gq, gk, gv start at zero and are added to). */
export function blockedBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dy: Float32Array,
  lse: Float32Array,
  rowDot: Float32Array,
  T: number,
  dk: number,
  dv: number,
  beta: number,
  W: number,
  gq: Float32Array,
  gk: Float32Array,
  gv: Float32Array,
): void {
  const QB = SOFTMAX_QUERY_BLOCK;
  const KB = SOFTMAX_KEY_BLOCK;
  const kT = transposeBlocks(k, T, dk, KB);
  const qT = transposeBlocks(q, T, dk, QB);
  const dyT = transposeBlocks(dy, T, dv, QB);
  const P = new Float32Array(QB * KB);
  const dS = new Float32Array(QB * KB);
  const PT = new Float32Array(KB * QB);
  const dST = new Float32Array(KB * QB);
  for (let j0 = 0; j0 < T; j0 += KB) {
    const nc = Math.min(KB, T - j0);
    const kb = j0 / KB;
    const lastQuery = Math.min(T - 1, j0 + nc - 1 + W - 1);
    for (let i0 = j0 - (j0 % QB); i0 <= lastQuery; i0 += QB) {
      const nr = Math.min(QB, T - i0);
      const qb = i0 / QB;
      matmulABt(q, i0 * dk, dk, nr, k, j0 * dk, dk, nc, dk, P, 0, KB, false);
      matmulABt(dy, i0 * dv, dv, nr, v, j0 * dv, dv, nc, dv, dS, 0, KB, false);
      let any = false;
      for (let r = 0; r < nr; r++) {
        const i = i0 + r;
        const lo = Math.max(0, i - W + 1 - j0);
        const hi = Math.min(nc - 1, i - j0);
        const o = r * KB;
        if (lo > hi) {
          P.fill(0, o, o + nc);
          dS.fill(0, o, o + nc);
          continue;
        }
        any = true;
        const l = lse[i];
        const d = rowDot[i];
        for (let c = 0; c < lo; c++) {
          P[o + c] = 0;
          dS[o + c] = 0;
        }
        for (let c = lo; c <= hi; c++) {
          const p = Math.exp(beta * P[o + c] - l);
          P[o + c] = p;
          dS[o + c] = beta * p * (dS[o + c] - d);
        }
        for (let c = hi + 1; c < nc; c++) {
          P[o + c] = 0;
          dS[o + c] = 0;
        }
      }
      if (!any) continue;
      // dV += Pᵀ·dY, dQ += dS·K, dK += dSᵀ·Q, each as A·Bᵀ against a transposed tile.
      transposeRows(P, 0, KB, nr, nc, PT, QB);
      transposeRows(dS, 0, KB, nr, nc, dST, QB);
      matmulABt(PT, 0, QB, nc, dyT, qb * dv * QB, QB, dv, nr, gv, j0 * dv, dv, true);
      matmulABt(dS, 0, KB, nr, kT, kb * dk * KB, KB, dk, nc, gq, i0 * dk, dk, true);
      matmulABt(dST, 0, QB, nc, qT, qb * dk * QB, QB, dk, nr, gk, j0 * dk, dk, true);
    }
  }
}
