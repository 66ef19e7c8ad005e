// The chunk read (ALGORITHM.md §4.2, chunked form): every query of a chunk against the dictionary
// as of the chunk start plus the causal in-chunk keys, as two small GEMMs around one softmax.
import { HEAP_BASE, wasmKernels } from '../wasm/simd.js';
import type { HeadWorkspace } from './head.js';
import { matmulABt } from './kernels.js';
import { readSoftmaxWasm, readValuesWasm } from './wasm-dict.js';

/** Scratch for reading one chunk: queries, logits/weights [C, rowsCap + C], softmax sums. */
export class ReadScratch {
  readonly qHat: Float32Array;
  readonly weights: Float32Array;
  readonly bias: Float32Array;
  readonly outAcc: Float32Array;
  readonly invSum: Float64Array;
  readonly qNorm: Float64Array;

  constructor(chunkSize: number, rowsCap: number, keyDim: number, valueDim: number) {
    this.qHat = new Float32Array(chunkSize * keyDim);
    this.weights = new Float32Array(chunkSize * (rowsCap + chunkSize));
    this.bias = new Float32Array(rowsCap + chunkSize);
    this.outAcc = new Float32Array(chunkSize * valueDim);
    this.invSum = new Float64Array(chunkSize);
    this.qNorm = new Float64Array(chunkSize);
  }

  /** Bytes of every typed array held (subclasses' arrays included). */
  get bytes(): number {
    let total = 0;
    for (const value of Object.values(this)) {
      if (ArrayBuffer.isView(value)) total += value.byteLength;
    }
    return total;
  }
}

/**
 * Softmax weights of `rows` queries (scratch.qHat rows 0…rows−1, the r-th at pending slot
 * p0 + r) over the n dictionary rows and pending slots 0…p0+r, written unnormalised to
 * scratch.weights [rows, n + p0 + rows] (masked slots are 0) with 1/Σ in scratch.invSum.
 * Returns the row stride of the weights.
 */
export function chunkSoftmax(ws: HeadWorkspace, s: ReadScratch, rows: number, p0: number): number {
  const w = rows >= 4 ? wasmKernels() : null;
  if (w !== null) {
    const P = p0 + rows;
    fillBias(ws, s, P);
    const at = readSoftmaxWasm(w, ws, s.qHat, s.bias, rows, p0);
    const stride = ws.size + P;
    const base = HEAP_BASE / 4;
    const heap = w.heap;
    for (let r = 0; r < rows; r++) {
      const from = base + at.w + r * at.wStride;
      s.weights.set(heap.subarray(from, from + stride), r * stride);
      s.invSum[r] = heap[base + at.inv + r];
    }
    return stride;
  }
  return chunkSoftmaxJs(ws, s, rows, p0);
}

/** Writes the logit bias of the n rows and P pending slots to s.bias. */
function fillBias(ws: HeadWorkspace, s: ReadScratch, P: number): void {
  const n = ws.size;
  const bias = s.bias;
  const beta = ws.config.beta;
  for (let i = 0; i < n; i++) bias[i] = ws.rowBias[i];
  const gaussian = ws.config.read === 'gaussian';
  for (let j = 0; j < P; j++) bias[n + j] = gaussian ? -beta * ws.pendHalfNorms[j] : 0;
}

/** The JS form of `chunkSoftmax` (float64 softmax statistics). */
export function chunkSoftmaxJs(
  ws: HeadWorkspace,
  s: ReadScratch,
  rows: number,
  p0: number,
): number {
  const { keyDim: dk, size: n } = ws;
  const P = p0 + rows;
  const stride = n + P;
  const W = s.weights;
  const bias = s.bias;
  const beta = ws.config.beta;
  matmulABt(s.qHat, 0, dk, rows, ws.keys, 0, dk, n, dk, W, 0, stride, false);
  matmulABt(s.qHat, 0, dk, rows, ws.pendKeys, 0, dk, P, dk, W, n, stride, false);
  fillBias(ws, s, P);
  for (let r = 0; r < rows; r++) {
    const base = r * stride;
    const live = n + p0 + r + 1;
    let max = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < live; i++) {
      const l = beta * W[base + i] + bias[i];
      W[base + i] = l;
      if (l > max) max = l;
    }
    let sum = 0;
    for (let i = 0; i < live; i++) {
      const e = Math.exp(W[base + i] - max);
      W[base + i] = e;
      sum += e;
    }
    for (let i = live; i < stride; i++) W[base + i] = 0;
    s.invSum[r] = 1 / sum;
  }
  return stride;
}

/**
 * Reads `rows` staged queries and writes their outputs to out[outOff …] ([rows, valueDim]).
 * On the JS kernels the weighted sum runs against the transposed value tables, so it is the same
 * A·Bᵀ kernel; on the WASM kernels the whole read runs in wasm-dict.ts.
 */
export function readChunk(
  ws: HeadWorkspace,
  s: ReadScratch,
  rows: number,
  p0: number,
  out: Float32Array,
  outOff: number,
): void {
  const { valueDim: dv, size: n, rowsCap, chunkSize: C } = ws;
  const P = p0 + rows;
  const w = rows >= 4 ? wasmKernels() : null;
  if (w !== null) {
    // Whole read in WASM memory against the resident dictionary: the weights never leave it.
    fillBias(ws, s, P);
    const at = readSoftmaxWasm(w, ws, s.qHat, s.bias, rows, p0);
    readValuesWasm(w, ws, at, rows, p0, out, outOff);
    return;
  }
  const stride = chunkSoftmaxJs(ws, s, rows, p0);
  const acc = s.outAcc;
  matmulABt(s.weights, 0, stride, rows, ws.valuesT, 0, rowsCap, dv, n, acc, 0, dv, false);
  matmulABt(s.weights, n, stride, rows, ws.pendValuesT, 0, C, dv, P, acc, 0, dv, true);
  for (let r = 0; r < rows; r++) {
    const inv = s.invSum[r];
    const o = outOff + r * dv;
    for (let d = 0; d < dv; d++) out[o + d] = acc[r * dv + d] * inv;
  }
}
