// Chunked causal linear attention forward (speed baseline) in its plain form: identity feature
// map and no normaliser, y_t = Σ_{s≤t} (q_t·k_s) v_s. Not @ovq/baselines' `linearAttention`
// (φ = elu + 1 and a normaliser), hence the different name.
import type { GpuContext } from '../gpu/context.js';
import { ceilDiv } from '../gpu/program.js';
import { type GpuTensor, TensorScope } from '../gpu/tensor.js';
import {
  checkArray,
  checkDims,
  checkTensor,
  type HeadsDims,
  requirePositiveInt,
} from '../gpu/validate.js';
import {
  LinearChunkStateProgram,
  LinearOutputProgram,
  LinearPrefixProgram,
} from '../kernels/linear/forward.js';

/** GPU level of `unnormalizedLinearAttention`: writes `t.out` [BH, T, dv]. */
export function unnormalizedLinearAttentionGpu(
  ctx: GpuContext,
  dims: HeadsDims,
  chunkSize: number,
  t: { q: GpuTensor; k: GpuTensor; v: GpuTensor; out: GpuTensor },
): void {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(dims);
  const C = requirePositiveInt('chunkSize', chunkSize);
  checkTensor('q', t.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('k', t.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('v', t.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  checkTensor('out', t.out, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  const wg = ctx.variant.workgroupSize;
  const chunks = ceilDiv(T, C);
  const scope = new TensorScope();
  const H = scope.track(ctx.tensor([bh, chunks, dk, dv], 'f32', 'chunk-states'));
  const rec = ctx.recorder();
  rec.dispatch(new LinearChunkStateProgram(dk, dv, wg), [t.k, t.v, H], { T, C, chunks }, [
    ceilDiv(dk * dv, wg),
    chunks,
    bh,
  ]);
  rec.dispatch(new LinearPrefixProgram(dk, dv, wg), [H], { chunks }, [ceilDiv(dk * dv, wg), bh]);
  rec.dispatch(new LinearOutputProgram(dk, dv, wg), [t.q, t.k, t.v, H, t.out], { T, C, chunks }, [
    ceilDiv(T, wg),
    bh,
  ]);
  rec.submit();
  ctx.disposeWhenDone(scope);
}

/**
 * y_t = Σ_{s≤t} (q_t·k_s) v_s over [batchHeads] heads (identity features, no normaliser; equal to
 * @ovq/baselines' decayLinearAttention with every decay 1 and scale 1). Arrays [BH, T, d].
 */
export async function unnormalizedLinearAttention(
  ctx: GpuContext,
  input: HeadsDims & { q: Float32Array; k: Float32Array; v: Float32Array },
  chunkSize = 64,
): Promise<Float32Array> {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(input);
  const q = checkArray('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const k = checkArray('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const v = checkArray('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  await ctx.assertUsableAsync();
  const scope = new TensorScope();
  try {
    const tq = scope.track(ctx.upload(q, [bh, T, dk], 'f32', 'q'));
    const tk = scope.track(ctx.upload(k, [bh, T, dk], 'f32', 'k'));
    const tv = scope.track(ctx.upload(v, [bh, T, dv], 'f32', 'v'));
    const out = scope.track(ctx.output([bh, T, dv], 'f32', 'out'));
    unnormalizedLinearAttentionGpu(ctx, input, chunkSize, { q: tq, k: tk, v: tv, out });
    const result = await ctx.readF32(out);
    await ctx.checkErrors();
    return result;
  } finally {
    scope.dispose();
  }
}

/**
 * @deprecated Renamed `unnormalizedLinearAttention`: it has no feature map and no normaliser, so
 * it is not @ovq/baselines' (or @ovq/tfjs') `linearAttention`. This alias goes in the next release.
 */
export const linearAttention = unnormalizedLinearAttention;

/** @deprecated Renamed `unnormalizedLinearAttentionGpu`; this alias goes in the next release. */
export const linearAttentionGpu = unnormalizedLinearAttentionGpu;
