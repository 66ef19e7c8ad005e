// The chunk read and the absorb's nearest-row screen on the WASM SIMD kernels, with the
// dictionary kept resident in WASM memory between chunks: keys as Kᵀ [dk, kStride] and values as
// V [rows, vStride], the layouts of the k-major matmulAB kernel (≈ 1.7x the GFLOP/s of matmulABt
// at d = 64). A chunk uploads only the rows its absorb changed (HeadWorkspace marks them in
// refreshRow) and its pending tokens, which sit right after the n rows (columns n… of Kᵀ, rows n…
// of V) so that one product covers the dictionary and the causal in-chunk block.
import { claimResident, HEAP_BASE, reserve, scratchBase, type WasmKernels } from '../wasm/simd.js';
import type { HeadWorkspace } from './head.js';
import { align4 } from './kernels.js';

/**
 * A row stride ≥ cols: a multiple of 4 (16-byte rows) whose byte length is not a multiple of
 * 512, so that walking down a column does not hit the same 4 KiB alias set every few rows.
 */
export function padStride(cols: number): number {
  const s = align4(cols);
  return s % 128 === 0 ? s + 4 : s;
}

/** Offsets (f32 elements from HEAP_BASE) and strides of a workspace's resident dictionary. */
type Layout = { kT: number; kStride: number; vals: number; vStride: number; bytes: number };

const layouts = new WeakMap<HeadWorkspace, Layout>();

function layoutOf(ws: HeadWorkspace): Layout {
  const known = layouts.get(ws);
  if (known !== undefined) return known;
  const wide = ws.rowsCap + ws.chunkSize;
  const kStride = padStride(wide);
  const vStride = padStride(ws.valueDim);
  const vals = align4(ws.keyDim * kStride);
  const layout = { kT: 0, kStride, vals, vStride, bytes: (vals + wide * vStride) * 4 };
  layouts.set(ws, layout);
  return layout;
}

/**
 * Brings the resident copy of `ws`'s rows up to date: all rows < size when the region was
 * someone else's or the workspace was reset/loaded, else the rows marked dirty since the last
 * sync. Returns the layout.
 */
function syncDictionary(w: WasmKernels, ws: HeadWorkspace): Layout {
  const L = layoutOf(ws);
  const held = claimResident(w, ws.residentId, L.bytes);
  const heap = w.heap;
  const { keyDim: dk, valueDim: dv, rowsCap } = ws;
  const base = HEAP_BASE / 4;
  const kT = base + L.kT;
  const vals = base + L.vals;
  const { keys, keysT, values, dirtyRows, dirtyMark } = ws;
  if (!held || ws.dirtyAll) {
    const n = ws.size;
    for (let d = 0; d < dk; d++) {
      heap.set(keysT.subarray(d * rowsCap, d * rowsCap + n), kT + d * L.kStride);
    }
    if (L.vStride === dv) heap.set(values.subarray(0, n * dv), vals);
    else
      for (let i = 0; i < n; i++)
        heap.set(values.subarray(i * dv, (i + 1) * dv), vals + i * L.vStride);
    ws.dirtyAll = false;
  } else {
    for (let t = 0; t < ws.dirtyCount; t++) {
      const i = dirtyRows[t];
      for (let d = 0; d < dk; d++) heap[kT + d * L.kStride + i] = keys[i * dk + d];
      heap.set(values.subarray(i * dv, (i + 1) * dv), vals + i * L.vStride);
    }
  }
  for (let t = 0; t < ws.dirtyCount; t++) dirtyMark[dirtyRows[t]] = 0;
  ws.dirtyCount = 0;
  return L;
}

/** Where readSoftmaxWasm left the weights: f32 offsets from HEAP_BASE and the row stride. */
export type WasmWeights = { w: number; wStride: number; inv: number; end: number; layout: Layout };

/**
 * The logits and softmax of `rows` staged queries (s.qHat rows, the r-th at pending slot p0 + r)
 * over the n rows and pending slots 0…p0+r, left in WASM memory: W [rows, wStride] unnormalised
 * (masked and padding slots 0) and 1/Σ per row. Uploads the pending tokens next to the rows.
 */
export function readSoftmaxWasm(
  w: WasmKernels,
  ws: HeadWorkspace,
  qHat: Float32Array,
  bias: Float32Array,
  rows: number,
  p0: number,
): WasmWeights {
  const L = syncDictionary(w, ws);
  const { keyDim: dk, valueDim: dv, chunkSize: C, size: n } = ws;
  const P = p0 + rows;
  const wide = n + P;
  const wStride = padStride(wide);
  const at0 = scratchBase();
  const q = (at0 - HEAP_BASE) / 4;
  const bi = align4(q + rows * dk);
  const W = align4(bi + wide);
  const inv = align4(W + rows * wStride);
  const end = align4(inv + rows);
  const heap = reserve(w, (end - q) * 4);
  const base = HEAP_BASE / 4;
  // Pending keys as columns n… of Kᵀ, pending values as rows n… of V.
  const kT = base + L.kT + n;
  for (let d = 0; d < dk; d++) {
    heap.set(ws.pendKeysT.subarray(d * C, d * C + P), kT + d * L.kStride);
  }
  const vals = base + L.vals + n * L.vStride;
  if (L.vStride === dv) heap.set(ws.pendValues.subarray(0, P * dv), vals);
  else {
    for (let j = 0; j < P; j++) {
      heap.set(ws.pendValues.subarray(j * dv, (j + 1) * dv), vals + j * L.vStride);
    }
  }
  heap.set(qHat.subarray(0, rows * dk), base + q);
  heap.set(bias.subarray(0, wide), base + bi);
  const e = w.exports;
  const ptr = (i: number) => HEAP_BASE + i * 4;
  e.matmulAB(ptr(q), dk, rows, ptr(L.kT), L.kStride, wide, dk, ptr(W), wStride, 0);
  e.softmaxRows(ptr(W), wStride, rows, n + p0, ptr(bi), ws.config.beta, ptr(inv));
  return { w: W, wStride, inv, end, layout: L };
}

/**
 * The weighted value sum of readSoftmaxWasm's weights, normalised: out[outOff …] = W·V / Σ
 * ([rows, valueDim]).
 */
export function readValuesWasm(
  w: WasmKernels,
  ws: HeadWorkspace,
  at: WasmWeights,
  rows: number,
  p0: number,
  out: Float32Array,
  outOff: number,
): void {
  const dv = ws.valueDim;
  const wide = ws.size + p0 + rows;
  const acc = at.end;
  const res = align4(acc + rows * dv);
  const heap = reserve(w, (res + rows * dv - (scratchBase() - HEAP_BASE) / 4) * 4);
  const e = w.exports;
  const ptr = (i: number) => HEAP_BASE + i * 4;
  const L = at.layout;
  e.matmulAB(ptr(at.w), at.wStride, rows, ptr(L.vals), L.vStride, dv, wide, ptr(acc), dv, 0);
  e.scaleRows(ptr(acc), rows, dv, ptr(at.inv), ptr(res));
  const base = HEAP_BASE / 4;
  out.set(heap.subarray(base + res, base + res + rows * dv), outOff);
}

/**
 * The nearest-row screen of an absorb on the WASM kernels: scores S = K̂_pending·D_kᵀ (P × n)
 * against the resident rows and, per token j, how many rows have ½‖μ‖² − S[j, i] within
 * window[j] of the smallest (count[j]) and the first of them (arg[j]). Rows j with count > 1 get
 * their scores copied to scores[j·sStride …] for the caller's float64 re-ranking.
 */
export function nearestRowScreenWasm(
  w: WasmKernels,
  ws: HeadWorkspace,
  P: number,
  window: Float32Array,
  scores: Float32Array,
  sStride: number,
  arg: Int32Array,
  count: Int32Array,
): void {
  const L = syncDictionary(w, ws);
  const { keyDim: dk, size: n } = ws;
  const nStride = padStride(n);
  const at0 = scratchBase();
  const pk = (at0 - HEAP_BASE) / 4;
  const S = align4(pk + P * dk);
  const h = align4(S + P * nStride);
  const win = align4(h + n);
  const a = align4(win + P);
  const c = align4(a + P);
  const heap = reserve(w, (c + P - pk) * 4);
  const base = HEAP_BASE / 4;
  heap.set(ws.pendKeys.subarray(0, P * dk), base + pk);
  heap.set(ws.halfNorms.subarray(0, n), base + h);
  heap.set(window.subarray(0, P), base + win);
  const ptr = (i: number) => HEAP_BASE + i * 4;
  w.exports.matmulAB(ptr(pk), dk, P, ptr(L.kT), L.kStride, n, dk, ptr(S), nStride, 0);
  w.exports.nearestScreen(ptr(S), nStride, P, n, ptr(h), ptr(win), ptr(a), ptr(c));
  const ints = w.heapI32;
  for (let j = 0; j < P; j++) {
    arg[j] = ints[base + a + j];
    count[j] = ints[base + c + j];
    if (count[j] > 1) {
      const row = base + S + j * nStride;
      scores.set(heap.subarray(row, row + n), j * sStride);
    }
  }
}
