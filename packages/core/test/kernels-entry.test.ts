// The public @ovq/core/kernels entry: matmulABt on both kernel sets against a float64 product,
// with strided operands, an output block inside a larger NaN-poisoned array (cells outside the
// block must stay NaN, cells inside must all be written), and accumulate.
import { afterAll, describe, expect, it } from 'vitest';
import { matmulABt, ovqKernels, setOvqKernels } from '../src/kernels/index.js';
import { assertClose, createRng, randn } from '../src/testing/index.js';

describe.each(['wasm', 'js'] as const)(
  '@ovq/core/kernels matmulABt on the %s kernels',
  (kernels) => {
    const before = ovqKernels();
    afterAll(() => setOvqKernels(before));

    it('strided row blocks, output block in a poisoned array, then accumulate', () => {
      setOvqKernels(kernels);
      expect(ovqKernels()).toBe(kernels);
      const [rows, cols, dim] = [37, 70, 33];
      const [aOff, aStride, bOff, bStride, oOff, oStride] = [5, 40, 3, 35, 7, 80];
      const rng = createRng(3);
      const A = Float32Array.from(randn(rng, aOff + rows * aStride));
      const B = Float32Array.from(randn(rng, bOff + cols * bStride));
      const Out = new Float32Array(oOff + rows * oStride).fill(Number.NaN);
      const ref = new Float64Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        for (let i = 0; i < cols; i++) {
          let s = 0;
          for (let d = 0; d < dim; d++) s += A[aOff + r * aStride + d] * B[bOff + i * bStride + d];
          ref[r * cols + i] = s;
        }
      }
      const block = () => {
        const got = new Float32Array(rows * cols);
        for (let r = 0; r < rows; r++) {
          got.set(Out.subarray(oOff + r * oStride, oOff + r * oStride + cols), r * cols);
        }
        return got;
      };
      matmulABt(A, aOff, aStride, rows, B, bOff, bStride, cols, dim, Out, oOff, oStride, false);
      assertClose('A·Bᵀ', ref, block(), 1e-6);
      let outside = 0;
      for (let x = 0; x < Out.length; x++) {
        const r = Math.floor((x - oOff) / oStride);
        const inBlock = x >= oOff && r < rows && x - oOff - r * oStride < cols;
        if (!inBlock && !Number.isNaN(Out[x])) outside++;
      }
      expect(outside).toBe(0);
      matmulABt(A, aOff, aStride, rows, B, bOff, bStride, cols, dim, Out, oOff, oStride, true);
      assertClose(
        'accumulated 2·A·Bᵀ',
        ref.map((x) => 2 * x),
        block(),
        1e-6,
      );
      setOvqKernels(before);
    });
  },
);
