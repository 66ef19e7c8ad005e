// The Float32 inner loops of the chunked path. Every dense product is phrased as one kernel,
// C = A·Bᵀ over contiguous rows, so that a single register-blocked loop serves the forward read,
// the assignment and every backward product. Kernels take only Float32Array so V8 keeps them
// monomorphic; the arithmetic itself runs in float64 registers (JS numbers) and rounds on store.
// The same products run as WASM SIMD (src/wasm/) unless the JS kernels are chosen.
import { reserve, scratchBase, wasmKernels } from '../wasm/simd.js';

/** Below this many multiply-adds (or 4 rows) copying into WASM memory costs more than it saves. */
const WASM_MIN_WORK = 16384;

/**
 * Out[oOff + r·oStride + i] (+)= Σ_d A[aOff + r·aStride + d] · B[bOff + i·bStride + d]
 * for r < rows, i < cols, d < dim. Runs the WASM SIMD kernel when chosen and the product is big
 * enough (operands copied into its memory, the result copied back), else `matmulABtJs`.
 */
export function matmulABt(
  A: Float32Array,
  aOff: number,
  aStride: number,
  rows: number,
  B: Float32Array,
  bOff: number,
  bStride: number,
  cols: number,
  dim: number,
  Out: Float32Array,
  oOff: number,
  oStride: number,
  accumulate: boolean,
): void {
  const w = rows >= 4 && rows * cols * dim >= WASM_MIN_WORK ? wasmKernels() : null;
  if (w === null) {
    matmulABtJs(
      A,
      aOff,
      aStride,
      rows,
      B,
      bOff,
      bStride,
      cols,
      dim,
      Out,
      oOff,
      oStride,
      accumulate,
    );
    return;
  }
  // Spans of the operands (strided rows copied with their gaps, which are never read).
  const aLen = (rows - 1) * aStride + dim;
  const bLen = (cols - 1) * bStride + dim;
  const oLen = (rows - 1) * oStride + cols;
  const a = 0;
  const b = align4(a + aLen);
  const o = align4(b + bLen);
  const heap = reserve(w, (o + oLen) * 4);
  const at0 = scratchBase();
  const base = at0 / 4;
  heap.set(A.subarray(aOff, aOff + aLen), base + a);
  heap.set(B.subarray(bOff, bOff + bLen), base + b);
  // The output span is copied in whole when it has gaps (other columns) or is accumulated into.
  const gaps = oStride !== cols;
  if (accumulate || gaps) heap.set(Out.subarray(oOff, oOff + oLen), base + o);
  w.exports.matmulABt(
    at0 + a * 4,
    aStride,
    rows,
    at0 + b * 4,
    bStride,
    cols,
    dim,
    at0 + o * 4,
    oStride,
    accumulate ? 1 : 0,
  );
  Out.set(heap.subarray(base + o, base + o + oLen), oOff);
}

let screen = {
  window: new Float32Array(0),
  arg: new Int32Array(0),
  count: new Int32Array(0),
  picks: new Int32Array(0),
};

/** Reused per-token arrays of nearestRowScreen and spawnRows (one set per thread, grown). */
export function screenScratch(P: number): typeof screen {
  if (screen.arg.length < P) {
    screen = {
      window: new Float32Array(P),
      arg: new Int32Array(P),
      count: new Int32Array(P),
      picks: new Int32Array(P),
    };
  }
  return screen;
}

/**
 * The spawns of an absorb on the WASM kernels, bit for bit the JS loop in head.ts (float64
 * distances in the same order): m picks among the P pending keys (given k-major: token j's keys
 * are pendKeysT[d·tStride + j]) (farthest by bestDist, or `preset[s]`, or s), updating
 * bestDist/bestRow (new rows rowBase + s) and marking `picked`. The picks in order go to
 * `picks`. Returns false (nothing written) on the JS kernels.
 */
export function spawnRows(
  pendKeysT: Float32Array,
  tStride: number,
  P: number,
  dk: number,
  m: number,
  farthest: boolean,
  preset: number[] | null,
  rowBase: number,
  bestDist: Float64Array,
  bestRow: Int32Array,
  picked: Uint8Array,
  picks: Int32Array,
): boolean {
  const w = wasmKernels();
  if (w === null) return false;
  const pk = 0;
  const bd = align4(pk + dk * tStride);
  const br = align4(bd + 2 * P);
  const pd = align4(br + P);
  const ps = align4(pd + P);
  const heap = reserve(w, (ps + m) * 4);
  const at0 = scratchBase();
  const base = at0 / 4;
  heap.set(pendKeysT.subarray(0, dk * tStride), base + pk);
  const f64 = w.heapF64;
  const f64At = (at0 + bd * 4) / 8;
  f64.set(bestDist.subarray(0, P), f64At);
  const ints = w.heapI32;
  ints.set(bestRow.subarray(0, P), base + br);
  if (!farthest) for (let s = 0; s < m; s++) ints[base + ps + s] = preset ? preset[s] : s;
  w.exports.spawnRows(
    at0 + pk * 4,
    tStride,
    P,
    dk,
    m,
    farthest ? 1 : 0,
    at0 + ps * 4,
    rowBase,
    at0 + bd * 4,
    at0 + br * 4,
    at0 + pd * 4,
  );
  for (let j = 0; j < P; j++) {
    bestDist[j] = f64[f64At + j];
    bestRow[j] = ints[base + br + j];
    picked[j] = ints[base + pd + j];
  }
  for (let s = 0; s < m; s++) picks[s] = ints[base + ps + s];
  return true;
}

/** Rounds an f32 index up to a multiple of 4 (16-byte alignment for the SIMD loads). */
export function align4(i: number): number {
  return (i + 3) & ~3;
}

/**
 * The JS kernel of `matmulABt`. Blocked 4 rows × 3 cols: 12 accumulators stay in registers and
 * each loaded element feeds 3 or 4 multiply-adds (measured fastest of 2×2…6×2, 4×4 spills).
 */
export function matmulABtJs(
  A: Float32Array,
  aOff: number,
  aStride: number,
  rows: number,
  B: Float32Array,
  bOff: number,
  bStride: number,
  cols: number,
  dim: number,
  Out: Float32Array,
  oOff: number,
  oStride: number,
  accumulate: boolean,
): void {
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const a0 = aOff + r * aStride;
    const a1 = a0 + aStride;
    const a2 = a1 + aStride;
    const a3 = a2 + aStride;
    const o0 = oOff + r * oStride;
    const o1 = o0 + oStride;
    const o2 = o1 + oStride;
    const o3 = o2 + oStride;
    let i = 0;
    for (; i + 3 <= cols; i += 3) {
      const b0 = bOff + i * bStride;
      const b1 = b0 + bStride;
      const b2 = b1 + bStride;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s20 = 0;
      let s21 = 0;
      let s22 = 0;
      let s30 = 0;
      let s31 = 0;
      let s32 = 0;
      for (let d = 0; d < dim; d++) {
        const x0 = B[b0 + d];
        const x1 = B[b1 + d];
        const x2 = B[b2 + d];
        const y0 = A[a0 + d];
        s00 += y0 * x0;
        s01 += y0 * x1;
        s02 += y0 * x2;
        const y1 = A[a1 + d];
        s10 += y1 * x0;
        s11 += y1 * x1;
        s12 += y1 * x2;
        const y2 = A[a2 + d];
        s20 += y2 * x0;
        s21 += y2 * x1;
        s22 += y2 * x2;
        const y3 = A[a3 + d];
        s30 += y3 * x0;
        s31 += y3 * x1;
        s32 += y3 * x2;
      }
      if (accumulate) {
        s00 += Out[o0 + i];
        s01 += Out[o0 + i + 1];
        s02 += Out[o0 + i + 2];
        s10 += Out[o1 + i];
        s11 += Out[o1 + i + 1];
        s12 += Out[o1 + i + 2];
        s20 += Out[o2 + i];
        s21 += Out[o2 + i + 1];
        s22 += Out[o2 + i + 2];
        s30 += Out[o3 + i];
        s31 += Out[o3 + i + 1];
        s32 += Out[o3 + i + 2];
      }
      Out[o0 + i] = s00;
      Out[o0 + i + 1] = s01;
      Out[o0 + i + 2] = s02;
      Out[o1 + i] = s10;
      Out[o1 + i + 1] = s11;
      Out[o1 + i + 2] = s12;
      Out[o2 + i] = s20;
      Out[o2 + i + 1] = s21;
      Out[o2 + i + 2] = s22;
      Out[o3 + i] = s30;
      Out[o3 + i + 1] = s31;
      Out[o3 + i + 2] = s32;
    }
    // Leftover columns (cols mod 3): 4 rows against one column.
    for (; i < cols; i++) {
      const b0 = bOff + i * bStride;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let d = 0; d < dim; d++) {
        const x0 = B[b0 + d];
        s0 += A[a0 + d] * x0;
        s1 += A[a1 + d] * x0;
        s2 += A[a2 + d] * x0;
        s3 += A[a3 + d] * x0;
      }
      if (accumulate) {
        s0 += Out[o0 + i];
        s1 += Out[o1 + i];
        s2 += Out[o2 + i];
        s3 += Out[o3 + i];
      }
      Out[o0 + i] = s0;
      Out[o1 + i] = s1;
      Out[o2 + i] = s2;
      Out[o3 + i] = s3;
    }
  }
  // Leftover rows (rows mod 4): one row against 4 columns at a time.
  for (; r < rows; r++) {
    const a0 = aOff + r * aStride;
    const o0 = oOff + r * oStride;
    let i = 0;
    for (; i + 4 <= cols; i += 4) {
      const b0 = bOff + i * bStride;
      const b1 = b0 + bStride;
      const b2 = b1 + bStride;
      const b3 = b2 + bStride;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let d = 0; d < dim; d++) {
        const y = A[a0 + d];
        s0 += y * B[b0 + d];
        s1 += y * B[b1 + d];
        s2 += y * B[b2 + d];
        s3 += y * B[b3 + d];
      }
      if (accumulate) {
        s0 += Out[o0 + i];
        s1 += Out[o0 + i + 1];
        s2 += Out[o0 + i + 2];
        s3 += Out[o0 + i + 3];
      }
      Out[o0 + i] = s0;
      Out[o0 + i + 1] = s1;
      Out[o0 + i + 2] = s2;
      Out[o0 + i + 3] = s3;
    }
    for (; i < cols; i++) {
      const b0 = bOff + i * bStride;
      let s = 0;
      for (let d = 0; d < dim; d++) s += A[a0 + d] * B[b0 + d];
      if (accumulate) s += Out[o0 + i];
      Out[o0 + i] = s;
    }
  }
}

/** Dst[dOff + c·dStride + r] = Src[sOff + r·sStride + c] for r < rows, c < cols. */
export function transpose(
  Src: Float32Array,
  sOff: number,
  sStride: number,
  rows: number,
  cols: number,
  Dst: Float32Array,
  dOff: number,
  dStride: number,
): void {
  for (let r = 0; r < rows; r++) {
    const s = sOff + r * sStride;
    for (let c = 0; c < cols; c++) Dst[dOff + c * dStride + r] = Src[s + c];
  }
}

/**
 * Writes x̂ = x / max(‖x‖, 1e-12) (or x itself when `normalize` is false) for one row into
 * dst[dOff…] and returns ‖x‖ (the raw norm; the backward pass needs it for the clamp).
 */
export function normalizeRowInto(
  src: ArrayLike<number>,
  sOff: number,
  dim: number,
  dst: Float32Array,
  dOff: number,
  normalize: boolean,
): number {
  if (!normalize) {
    for (let d = 0; d < dim; d++) dst[dOff + d] = src[sOff + d];
    return 1;
  }
  let sq = 0;
  for (let d = 0; d < dim; d++) sq += src[sOff + d] * src[sOff + d];
  const norm = Math.sqrt(sq);
  const inv = 1 / Math.max(norm, 1e-12);
  for (let d = 0; d < dim; d++) dst[dOff + d] = src[sOff + d] * inv;
  return norm;
}
