// Yardstick matmul (GPU level and convenience level).
import type { GpuContext } from '../gpu/context.js';
import { ceilDiv } from '../gpu/program.js';
import type { GpuTensor } from '../gpu/tensor.js';
import { checkArray, checkTensor, requirePositiveInt } from '../gpu/validate.js';
import { MATMUL_TILE, MatmulProgram } from '../kernels/matmul/matmul.js';

const program = new MatmulProgram();

/** Records C = A·B (A [M,K], B [K,N], C [M,N]) into an open recorder-free submit. */
export function matmulGpu(
  ctx: GpuContext,
  a: GpuTensor,
  b: GpuTensor,
  c: GpuTensor,
  m: number,
  n: number,
  k: number,
): void {
  requirePositiveInt('m', m);
  requirePositiveInt('n', n);
  requirePositiveInt('k', k);
  checkTensor('a', a, [m, k], 'M*K');
  checkTensor('b', b, [k, n], 'K*N');
  checkTensor('c', c, [m, n], 'M*N');
  const rec = ctx.recorder();
  rec.dispatch(program, [a, b, c], { M: m, N: n, K: k }, [
    ceilDiv(n, MATMUL_TILE),
    ceilDiv(m, MATMUL_TILE),
  ]);
  rec.submit();
}

export async function matmul(
  ctx: GpuContext,
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
): Promise<Float32Array> {
  checkArray('a', a, [m, k], 'M*K');
  checkArray('b', b, [k, n], 'K*N');
  await ctx.assertUsableAsync();
  const ta = ctx.upload(a, [m, k], 'f32', 'a');
  const tb = ctx.upload(b, [k, n], 'f32', 'b');
  const tc = ctx.tensor([m, n], 'f32', 'c');
  try {
    matmulGpu(ctx, ta, tb, tc, m, n, k);
    const out = await ctx.readF32(tc);
    await ctx.checkErrors();
    return out;
  } finally {
    ta.dispose();
    tb.dispose();
    tc.dispose();
  }
}
