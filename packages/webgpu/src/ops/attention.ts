// Causal softmax attention (the speed baseline): tiled forward and backward. Layout: q, k
// [batchHeads, seqLen, keyDim], v and outputs [batchHeads, seqLen, valueDim], row-major.

import { TILE_CAP, tileRows } from '../device/variants.js';
import type { GpuContext } from '../gpu/context.js';
import { ceilDiv } from '../gpu/program.js';
import { type GpuTensor, TensorScope } from '../gpu/tensor.js';
import {
  checkArray,
  checkDims,
  checkTensor,
  type HeadsDims,
  requirePositive,
} from '../gpu/validate.js';
import {
  AttentionBackwardKeyProgram,
  AttentionBackwardQueryProgram,
  RowDotProgram,
} from '../kernels/attention/backward.js';
import { AttentionForwardProgram } from '../kernels/attention/forward.js';

export type AttentionInput = HeadsDims & { q: Float32Array; k: Float32Array; v: Float32Array };

function programs(ctx: GpuContext, dk: number, dv: number) {
  const wg = ctx.variant.workgroupSize;
  const padded = 4 * Math.ceil(dk / 4) + 4 * Math.ceil(dv / 4);
  const fwdTile = tileRows(ctx.variant, padded, TILE_CAP);
  const bwdTile = tileRows(ctx.variant, padded + 2, TILE_CAP);
  return {
    forward: new AttentionForwardProgram(dk, dv, wg, fwdTile),
    delta: new RowDotProgram(dv, wg),
    dq: new AttentionBackwardQueryProgram(dk, dv, wg, fwdTile),
    dkv: new AttentionBackwardKeyProgram(dk, dv, wg, bwdTile),
  };
}

/** GPU level: writes out [BH,T,dv] and lse [BH,T] from q, k, v tensors; no host round trip. */
export function attentionForwardGpu(
  ctx: GpuContext,
  dims: HeadsDims,
  scale: number,
  t: { q: GpuTensor; k: GpuTensor; v: GpuTensor; out: GpuTensor; lse: GpuTensor },
): void {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(dims);
  requirePositive('scale', scale);
  checkTensor('q', t.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('k', t.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('v', t.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  checkTensor('out', t.out, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  checkTensor('lse', t.lse, [bh, T], 'batchHeads*seqLen');
  const p = programs(ctx, dk, dv);
  const rec = ctx.recorder();
  rec.dispatch(p.forward, [t.q, t.k, t.v, t.out, t.lse], { T, scale }, [
    ceilDiv(T, p.forward.wg),
    bh,
  ]);
  rec.submit();
}

/**
 * GPU level backward: from the forward's out and lse, writes dq, dk, dv and dscale
 * [BH, T] (per-query partials of ∂L/∂scale; their sum is the gradient of the scale).
 */
export function attentionBackwardGpu(
  ctx: GpuContext,
  dims: HeadsDims,
  scale: number,
  t: {
    q: GpuTensor;
    k: GpuTensor;
    v: GpuTensor;
    out: GpuTensor;
    lse: GpuTensor;
    dout: GpuTensor;
    dq: GpuTensor;
    dk: GpuTensor;
    dv: GpuTensor;
    dscale: GpuTensor;
  },
): void {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(dims);
  requirePositive('scale', scale);
  for (const [name, shape] of [
    ['q', [bh, T, dk]],
    ['k', [bh, T, dk]],
    ['v', [bh, T, dv]],
    ['out', [bh, T, dv]],
    ['lse', [bh, T]],
    ['dout', [bh, T, dv]],
    ['dq', [bh, T, dk]],
    ['dk', [bh, T, dk]],
    ['dv', [bh, T, dv]],
    ['dscale', [bh, T]],
  ] as const) {
    checkTensor(name, t[name], shape, shape.join('*'));
  }
  const p = programs(ctx, dk, dv);
  const scope = new TensorScope();
  const delta = scope.track(ctx.tensor([bh, T], 'f32', 'delta'));
  const rec = ctx.recorder();
  const rows = bh * T;
  const wg = ctx.variant.workgroupSize;
  rec.dispatch(p.delta, [t.dout, t.out, delta], { rows }, [
    Math.min(ceilDiv(rows, wg), 65535),
    ceilDiv(ceilDiv(rows, wg), 65535),
  ]);
  rec.dispatch(p.dq, [t.q, t.k, t.v, t.dout, t.lse, delta, t.dq, t.dscale], { T, scale }, [
    ceilDiv(T, wg),
    bh,
  ]);
  rec.dispatch(p.dkv, [t.q, t.k, t.v, t.dout, t.lse, delta, t.dk, t.dv], { T, scale }, [
    ceilDiv(T, wg),
    bh,
  ]);
  rec.submit();
  ctx.disposeWhenDone(scope);
}

function upload(ctx: GpuContext, scope: TensorScope, input: AttentionInput) {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(input);
  const q = checkArray('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const k = checkArray('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const v = checkArray('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  return {
    q: scope.track(ctx.upload(q, [bh, T, dk], 'f32', 'q')),
    k: scope.track(ctx.upload(k, [bh, T, dk], 'f32', 'k')),
    v: scope.track(ctx.upload(v, [bh, T, dv], 'f32', 'v')),
  };
}

/** Convenience level: causal softmax attention with scale `scale`, Float32Arrays in and out. */
export async function attentionForward(
  ctx: GpuContext,
  input: AttentionInput,
  scale: number,
): Promise<{ output: Float32Array; lse: Float32Array }> {
  await ctx.assertUsableAsync();
  const scope = new TensorScope();
  try {
    const { q, k, v } = upload(ctx, scope, input);
    const { batchHeads: bh, seqLen: T, valueDim: dv } = input;
    const out = scope.track(ctx.output([bh, T, dv], 'f32', 'out'));
    const lse = scope.track(ctx.output([bh, T], 'f32', 'lse'));
    attentionForwardGpu(ctx, input, scale, { q, k, v, out, lse });
    const result = { output: await ctx.readF32(out), lse: await ctx.readF32(lse) };
    await ctx.checkErrors();
    return result;
  } finally {
    scope.dispose();
  }
}

/** Convenience level backward: gradients of ⟨dOutput, output⟩ w.r.t. q, k, v and the scale. */
export async function attentionBackward(
  ctx: GpuContext,
  input: AttentionInput,
  scale: number,
  dOutput: Float32Array,
): Promise<{ dq: Float32Array; dk: Float32Array; dv: Float32Array; dscale: number }> {
  await ctx.assertUsableAsync();
  const scope = new TensorScope();
  try {
    const { q, k, v } = upload(ctx, scope, input);
    const { batchHeads: bh, seqLen: T, keyDim: dkDim, valueDim: dvDim } = input;
    const dOut = checkArray('dOutput', dOutput, [bh, T, dvDim], 'batchHeads*seqLen*valueDim');
    const dout = scope.track(ctx.upload(dOut, [bh, T, dvDim], 'f32', 'dout'));
    const out = scope.track(ctx.output([bh, T, dvDim], 'f32', 'out'));
    const lse = scope.track(ctx.output([bh, T], 'f32', 'lse'));
    attentionForwardGpu(ctx, input, scale, { q, k, v, out, lse });
    const dq = scope.track(ctx.output([bh, T, dkDim], 'f32', 'dq'));
    const dk = scope.track(ctx.output([bh, T, dkDim], 'f32', 'dk'));
    const dv = scope.track(ctx.output([bh, T, dvDim], 'f32', 'dv'));
    const dscale = scope.track(ctx.output([bh, T], 'f32', 'dscale'));
    attentionBackwardGpu(ctx, input, scale, { q, k, v, out, lse, dout, dq, dk, dv, dscale });
    const parts = await ctx.readF32(dscale);
    let total = 0;
    for (const x of parts) total += x; // fixed order: deterministic
    const result = {
      dq: await ctx.readF32(dq),
      dk: await ctx.readF32(dk),
      dv: await ctx.readF32(dv),
      dscale: total,
    };
    await ctx.checkErrors();
    return result;
  } finally {
    scope.dispose();
  }
}
