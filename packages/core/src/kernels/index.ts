// @ovq/core/kernels: the Float32 matmul kernel of OVQ's chunked path, public for other packages'
// fast paths (the softmax baseline of @ovq/baselines runs its score and P·V blocks on it). It is
// the very kernel the chunked read uses: WASM SIMD when chosen and available (see
// `setOvqKernels` / OVQ_KERNELS), the register-blocked JS loop otherwise.
import { matmulABt as matmulABtKernel } from '../chunked/kernels.js';

export { type OvqKernelsSetting, ovqKernels, setOvqKernels } from '../wasm/simd.js';

/**
 * Out[outOffset + r·outStride + i] (+)= Σ_{d<dim} A[aOffset + r·aStride + d] · B[bOffset + i·bStride + d]
 * for r < rows, i < cols: a row block of A times the transpose of a row block of B (C = A·Bᵀ).
 * A·B itself is A times the transpose of Bᵀ: pass B transposed (rows of length dim).
 *
 * Sums run in f32 (WASM lanes) or float64 registers (JS) and round on store. Each WASM call
 * copies its operands into the module's memory and the result back, so give it blocks of at
 * least a few thousand multiply-adds (smaller products run the JS loop anyway). Offsets and
 * strides count elements; `accumulate` adds to Out instead of overwriting it. Nothing is
 * checked: the caller guarantees the spans fit in the arrays.
 */
export function matmulABt(
  A: Float32Array,
  aOffset: number,
  aStride: number,
  rows: number,
  B: Float32Array,
  bOffset: number,
  bStride: number,
  cols: number,
  dim: number,
  Out: Float32Array,
  outOffset: number,
  outStride: number,
  accumulate: boolean,
): void {
  matmulABtKernel(
    A,
    aOffset,
    aStride,
    rows,
    B,
    bOffset,
    bStride,
    cols,
    dim,
    Out,
    outOffset,
    outStride,
    accumulate,
  );
}
