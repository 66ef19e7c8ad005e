// The one-token read of a decode stream on the WASM SIMD kernels, with the dictionary kept
// resident. The shared kernel instance (src/wasm/simd.ts) copies every operand in per call: for
// one token that copy (n·(dk + dv) floats) costs as much as the read. So each stream owns a
// private instance of the same module and uploads the rows only after an absorb (every C tokens)
// and one pending slot per token; a token's read then moves only q̂ in and the output out.
import type { HeadWorkspace } from '../chunked/head.js';
import { KERNELS_WASM_BASE64 } from '../wasm/kernels.generated.js';
import { HEAP_BASE, type WasmKernels, wasmKernels } from '../wasm/simd.js';

type Exports = WasmKernels['exports'];

let compiled: WebAssembly.Module | null | undefined;

/** The kernels' module, compiled once per thread (null where WebAssembly SIMD is missing). */
function kernelModule(): WebAssembly.Module | null {
  if (compiled !== undefined) return compiled;
  try {
    const text = atob(KERNELS_WASM_BASE64);
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    compiled = new WebAssembly.Module(bytes);
  } catch {
    compiled = null;
  }
  return compiled;
}

const up4 = (x: number) => (x + 3) & ~3;

export class ResidentReader {
  private readonly e: Exports;
  private readonly heap: Float32Array;
  private readonly rowsCap: number;
  private readonly C: number;
  private readonly dk: number;
  private readonly dv: number;
  // f32 offsets from HEAP_BASE of the resident operands and the per-token scratch.
  private readonly q: number;
  private readonly keys: number;
  private readonly vT: number;
  private readonly pend: number;
  private readonly pvT: number;
  private readonly bias: number;
  private readonly w: number;
  private readonly inv: number;
  private readonly acc: number;
  private readonly res: number;

  private constructor(e: Exports, ws: HeadWorkspace) {
    const { rowsCap, chunkSize: C, keyDim: dk, valueDim: dv } = ws;
    this.e = e;
    this.rowsCap = rowsCap;
    this.C = C;
    this.dk = dk;
    this.dv = dv;
    this.q = 0;
    this.keys = up4(this.q + dk);
    this.vT = up4(this.keys + rowsCap * dk);
    this.pend = up4(this.vT + dv * rowsCap);
    this.pvT = up4(this.pend + C * dk);
    this.bias = up4(this.pvT + dv * C);
    this.w = up4(this.bias + rowsCap + C);
    this.inv = up4(this.w + rowsCap + C);
    this.acc = up4(this.inv + 1);
    this.res = up4(this.acc + dv);
    const need = HEAP_BASE + (this.res + dv) * 4;
    const memory = e.memory;
    if (memory.buffer.byteLength < need) {
      memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
    }
    this.heap = new Float32Array(memory.buffer);
  }

  /** A reader for `ws`'s shapes, or null when the JS kernels are chosen or WASM is missing. */
  static create(ws: HeadWorkspace): ResidentReader | null {
    if (wasmKernels() === null) return null;
    const module = kernelModule();
    if (module === null) return null;
    const instance = new WebAssembly.Instance(module, {
      env: {
        abort: () => {
          throw new Error('@ovq/core WASM kernel aborted');
        },
      },
    });
    const reader = new ResidentReader(instance.exports as unknown as Exports, ws);
    reader.syncAll(ws);
    return reader;
  }

  /** Uploads the dictionary rows and their logit bias (after an absorb). */
  syncRows(ws: HeadWorkspace): void {
    const base = HEAP_BASE / 4;
    const n = ws.size;
    const heap = this.heap;
    heap.set(ws.keys.subarray(0, n * this.dk), base + this.keys);
    if (n > 0) heap.set(ws.valuesT.subarray(0, (this.dv - 1) * this.rowsCap + n), base + this.vT);
    heap.set(ws.rowBias.subarray(0, n), base + this.bias);
  }

  /** Uploads pending slot j: its key row, value column and logit bias (after the rows'). */
  syncPending(ws: HeadWorkspace, j: number): void {
    const base = HEAP_BASE / 4;
    const { dk, dv, C, heap } = this;
    // Element loops, not set(subarray): no view objects on the per-token path.
    const keyAt = base + this.pend + j * dk;
    for (let d = 0; d < dk; d++) heap[keyAt + d] = ws.pendKeys[j * dk + d];
    for (let d = 0; d < dv; d++) heap[base + this.pvT + d * C + j] = ws.pendValuesT[d * C + j];
    const gaussian = ws.config.read === 'gaussian';
    heap[base + this.bias + ws.size + j] = gaussian ? -ws.config.beta * ws.pendHalfNorms[j] : 0;
  }

  /** Uploads everything (after a load, a piece appended on the chunked path, or a regrow). */
  syncAll(ws: HeadWorkspace): void {
    this.syncRows(ws);
    for (let j = 0; j < ws.pendingCount; j++) this.syncPending(ws, j);
  }

  /**
   * Reads the query qHat[0…dk) staged at pending slot p0 (already synced) against the n rows and
   * pending slots 0…p0, writing its output to out[outOff…]: the chunked read with one row.
   */
  read(ws: HeadWorkspace, qHat: Float32Array, p0: number, out: Float32Array, outOff: number): void {
    const base = HEAP_BASE / 4;
    const { e, dk, dv, C, rowsCap, heap } = this;
    const n = ws.size;
    const P = p0 + 1;
    const stride = n + P;
    for (let d = 0; d < dk; d++) heap[base + this.q + d] = qHat[d];
    // Byte pointers into the instance's memory.
    const q = HEAP_BASE + this.q * 4;
    const w = HEAP_BASE + this.w * 4;
    const acc = HEAP_BASE + this.acc * 4;
    const inv = HEAP_BASE + this.inv * 4;
    e.matmulABt(q, dk, 1, HEAP_BASE + this.keys * 4, dk, n, dk, w, stride, 0);
    e.matmulABt(q, dk, 1, HEAP_BASE + this.pend * 4, dk, P, dk, w + n * 4, stride, 0);
    e.softmaxRows(w, stride, 1, n + p0, HEAP_BASE + this.bias * 4, ws.config.beta, inv);
    e.matmulABt(w, stride, 1, HEAP_BASE + this.vT * 4, rowsCap, dv, n, acc, dv, 0);
    e.matmulABt(w + n * 4, stride, 1, HEAP_BASE + this.pvT * 4, C, dv, P, acc, dv, 1);
    e.scaleRows(acc, 1, dv, inv, HEAP_BASE + this.res * 4);
    const res = base + this.res;
    for (let d = 0; d < dv; d++) out[outOff + d] = heap[res + d];
  }
}
