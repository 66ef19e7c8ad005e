// The WASM SIMD kernels (wasm/kernels.ts, AssemblyScript, shipped as base64 in
// kernels.generated.ts) and the choice between them and the JS kernels. The module is compiled
// once per thread, synchronously, on first use. Kernel operands are copied into its memory and
// results copied back (memcpy-speed TypedArray.set), so callers keep plain Float32Arrays; the
// chunked path's dictionary stays resident there between chunks (claimResident).
//
// Choice: `setOvqKernels('js' | 'wasm' | 'auto')`, or the environment variable OVQ_KERNELS with
// the same values (read once at load). 'auto' (default) uses WASM where it compiles (it needs
// WebAssembly SIMD: Node ≥ 16.4, every current browser) and the JS kernels otherwise.
import { OvqInputError } from '../validate.js';
import { KERNELS_WASM_BASE64 } from './kernels.generated.js';

export type OvqKernelsSetting = 'auto' | 'js' | 'wasm';

/** Byte addresses in the module's memory, strides in floats; `accumulate` 1 adds into out. */
type MatmulKernel = (
  a: number,
  aStride: number,
  rows: number,
  b: number,
  bStride: number,
  cols: number,
  dim: number,
  out: number,
  oStride: number,
  accumulate: number,
) => void;

type Exports = {
  memory: WebAssembly.Memory;
  /** out[r·oStride + i] (+)= Σ_d a[r·aStride + d] · b[i·bStride + d] (see wasm/kernels.ts). */
  matmulABt: MatmulKernel;
  /** The same product with b stored k-major: b[d·bStride + i]; 4×8 register blocks. */
  matmulAB: MatmulKernel;
  softmaxRows(
    w: number,
    stride: number,
    rows: number,
    liveBase: number,
    bias: number,
    beta: number,
    invSum: number,
  ): void;
  scaleRows(acc: number, rows: number, dv: number, invSum: number, out: number): void;
  spawnRows(
    pendT: number,
    tStride: number,
    P: number,
    dk: number,
    m: number,
    farthest: number,
    picks: number,
    rowBase: number,
    bestDist: number,
    bestRow: number,
    picked: number,
  ): void;
  nearestScreen(
    s: number,
    sStride: number,
    P: number,
    n: number,
    halfNorms: number,
    window: number,
    arg: number,
    count: number,
  ): void;
};

/** The instantiated module and a Float32Array view of its memory (refreshed after growth). */
export type WasmKernels = {
  exports: Exports;
  heap: Float32Array;
  /** Int32 and Float64 views of the same memory (kept in step with `heap` by reserve). */
  heapI32: Int32Array;
  heapF64: Float64Array;
};

function readEnvSetting(): OvqKernelsSetting {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env?.OVQ_KERNELS;
  return env === 'js' || env === 'wasm' ? env : 'auto';
}

let setting: OvqKernelsSetting = readEnvSetting();
let loaded: WasmKernels | null | undefined;
let loadError = '';

function decode(base64: string): Uint8Array {
  const text = atob(base64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes;
}

function load(): WasmKernels | null {
  if (loaded !== undefined) return loaded;
  try {
    const module = new WebAssembly.Module(decode(KERNELS_WASM_BASE64) as Uint8Array<ArrayBuffer>);
    const instance = new WebAssembly.Instance(module, {
      env: {
        abort: () => {
          throw new Error('@ovq/core WASM kernel aborted');
        },
      },
    });
    const exports = instance.exports as unknown as Exports;
    const buffer = exports.memory.buffer;
    loaded = {
      exports,
      heap: new Float32Array(buffer),
      heapI32: new Int32Array(buffer),
      heapF64: new Float64Array(buffer),
    };
  } catch (error) {
    loadError = String(error);
    loaded = null;
  }
  return loaded;
}

/**
 * Chooses the kernels of every later call on this thread (pool workers follow the caller's
 * choice): 'wasm' (throws OvqInputError where WebAssembly SIMD is unavailable), 'js', or 'auto'.
 */
export function setOvqKernels(kernels: OvqKernelsSetting): void {
  if (kernels !== 'auto' && kernels !== 'js' && kernels !== 'wasm') {
    throw new OvqInputError('kernels', `got ${String(kernels)}; expected 'auto', 'js' or 'wasm'`);
  }
  if (kernels === 'wasm' && load() === null) {
    throw new OvqInputError('kernels', `WASM SIMD kernels unavailable here (${loadError})`);
  }
  setting = kernels;
}

/** The kernels in use now: 'wasm' or 'js'. */
export function ovqKernels(): 'wasm' | 'js' {
  return wasmKernels() === null ? 'js' : 'wasm';
}

/** The setting (for pool workers to follow). */
export function ovqKernelsSetting(): OvqKernelsSetting {
  return setting;
}

/** The WASM kernels if they are chosen and available, else null (use the JS kernels). */
export function wasmKernels(): WasmKernels | null {
  return setting === 'js' ? null : load();
}

/** Byte offset where kernel memory starts (page 0 holds the module's own data and stack). */
export const HEAP_BASE = 65536;

// Memory from HEAP_BASE: first the resident region (one owner per thread: the chunked path's
// dictionary, kept between calls so that a chunk uploads only the rows an absorb changed), then
// per-call scratch, which every kernel call may overwrite.
let scratchAt = HEAP_BASE;
let residentOwner = 0;

/** Byte offset where per-call scratch starts (after the resident region). */
export function scratchBase(): number {
  return scratchAt;
}

/**
 * Claims the resident region [HEAP_BASE, HEAP_BASE + bytes) for `owner` (a nonzero id) and
 * returns true when that owner already held it at this size, so the contents are as it left
 * them; false means the caller must upload all of it. Scratch moves to after the region.
 */
export function claimResident(w: WasmKernels, owner: number, bytes: number): boolean {
  const end = HEAP_BASE + ((bytes + 15) & ~15);
  if (residentOwner === owner && scratchAt === end) return true;
  residentOwner = owner;
  scratchAt = end;
  reserve(w, 0);
  return false;
}

/**
 * Makes the memory at least `bytes` past scratchBase() long; returns the (possibly new) f32 view
 * of the whole memory.
 */
export function reserve(w: WasmKernels, bytes: number): Float32Array {
  const memory = w.exports.memory;
  const need = scratchAt + bytes;
  if (memory.buffer.byteLength < need) {
    memory.grow(Math.ceil((need - memory.buffer.byteLength) / 65536));
  }
  if (w.heap.buffer !== memory.buffer) {
    w.heap = new Float32Array(memory.buffer);
    w.heapI32 = new Int32Array(memory.buffer);
    w.heapF64 = new Float64Array(memory.buffer);
  }
  return w.heap;
}
