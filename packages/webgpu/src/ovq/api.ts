// Convenience level: Float32Arrays in and out, one read-back per call. Layout of every array:
// [batchHeads, seqLen, dim] row-major (batch-major, then head: index (b·H + h)·T·d + t·d + i).
import type { OvqConfig, OvqState, OvqTrace } from '@ovq/core';
import type { GpuContext } from '../gpu/context.js';
import { WebGpuError } from '../gpu/errors.js';
import { TensorScope } from '../gpu/tensor.js';
import {
  checkArray,
  checkDims,
  checkFinite,
  type HeadsDims,
  requireNonNegativeInt,
} from '../gpu/validate.js';
import { traceLayout } from '../kernels/ovq/absorb/spawn.js';
import { ovqBackwardGpu } from './backward.js';
import { type ForwardRecord, ovqForwardGpu } from './forward.js';
import { createGpuOvqState, type GpuOvqState, readOvqState } from './state.js';

export type OvqInput = HeadsDims & { q: Float32Array; k: Float32Array; v: Float32Array };

/** `checkFinite`: scan every input array on the host and throw at the first NaN or ±∞. */
export type OvqCallOptions = { checkFinite?: boolean };

function finite(options: OvqCallOptions | undefined, arrays: Record<string, Float32Array>): void {
  if (!options?.checkFinite) return;
  for (const [name, array] of Object.entries(arrays)) checkFinite(name, array);
}

/** Decodes the GPU's decisions into one OvqTrace per head (replayable by @ovq/core). */
export function decodeTrace(
  record: ForwardRecord,
  trace: Int32Array,
  batchHeads: number,
  chunkSize: number,
): OvqTrace[] {
  const A = Math.max(1, record.absorbs.length);
  const C = chunkSize;
  return Array.from({ length: batchHeads }, (_, h) =>
    record.absorbs.map((meta, a) => {
      const base = (h * A + a) * traceLayout(C).stride;
      return {
        sizeBefore: meta.sizeBefore,
        spawned: Array.from(trace.subarray(base + C, base + C + meta.spawned)),
        assignment: Array.from(trace.subarray(base, base + C)),
      };
    }),
  );
}

/** Appends tokens to a GPU state; returns their outputs and the absorb decisions per head. */
export async function ovqAppend(
  state: GpuOvqState,
  input: { q: Float32Array; k: Float32Array; v: Float32Array; seqLen: number },
  options?: OvqCallOptions,
): Promise<{ output: Float32Array; trace: OvqTrace[] }> {
  state.assertAlive();
  const ctx = state.ctx;
  await ctx.assertUsableAsync();
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const T = requireNonNegativeInt('seqLen', input.seqLen);
  const q = checkArray('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const k = checkArray('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const v = checkArray('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  finite(options, { q, k, v });
  const scope = new TensorScope();
  let record: ForwardRecord | null = null;
  try {
    const tq = scope.track(ctx.upload(q, [bh, T, dk], 'f32', 'q'));
    const tk = scope.track(ctx.upload(k, [bh, T, dk], 'f32', 'k'));
    const tv = scope.track(ctx.upload(v, [bh, T, dv], 'f32', 'v'));
    const out = scope.track(ctx.output([bh, T, dv], 'f32', 'out'));
    record = ovqForwardGpu(state, { q: tq, k: tk, v: tv, seqLen: T }, out);
    const output = await ctx.readF32(out);
    const trace = decodeTrace(record, await ctx.readI32(record.trace), bh, state.config.chunkSize);
    await ctx.checkErrors();
    return { output, trace };
  } finally {
    record?.scope.dispose();
    scope.dispose();
  }
}

/** OVQ-attention over [batchHeads] independent heads from empty dictionaries. */
export async function ovqAttention(
  ctx: GpuContext,
  input: OvqInput,
  config: OvqConfig,
  options?: OvqCallOptions,
): Promise<{ output: Float32Array; trace: OvqTrace[]; state: OvqState[] }> {
  const dims = checkDims(input);
  if (!config || typeof config !== 'object')
    throw new WebGpuError('config', `got ${String(config)}; expected an OvqConfig`);
  const state = createGpuOvqState(ctx, dims, config);
  try {
    const { output, trace } = await ovqAppend(state, { ...input, seqLen: dims.seqLen }, options);
    return { output, trace, state: await readOvqState(state) };
  } finally {
    state.dispose();
  }
}

/**
 * Gradients of ⟨dOutput, output⟩ w.r.t. q, k, v [BH, T, d] and β (per head and total), for
 * OVQ-attention from empty dictionaries. Also returns the forward output.
 */
export async function ovqAttentionBackward(
  ctx: GpuContext,
  input: OvqInput,
  config: OvqConfig,
  dOutput: Float32Array,
  options?: OvqCallOptions,
): Promise<{
  output: Float32Array;
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  dbeta: number;
  dbetaPerHead: Float32Array;
}> {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(input);
  const q = checkArray('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const k = checkArray('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const v = checkArray('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  const g = checkArray('dOutput', dOutput, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  finite(options, { q, k, v, dOutput: g });
  if (!config || typeof config !== 'object')
    throw new WebGpuError('config', `got ${String(config)}; expected an OvqConfig`);
  await ctx.assertUsableAsync();
  const state = createGpuOvqState(ctx, input, config);
  const scope = new TensorScope();
  try {
    const t = {
      q: scope.track(ctx.upload(q, [bh, T, dk], 'f32', 'q')),
      k: scope.track(ctx.upload(k, [bh, T, dk], 'f32', 'k')),
      v: scope.track(ctx.upload(v, [bh, T, dv], 'f32', 'v')),
    };
    const dout = scope.track(ctx.upload(g, [bh, T, dv], 'f32', 'dOutput'));
    const out = scope.track(ctx.output([bh, T, dv], 'f32', 'out'));
    const grads = {
      dq: scope.track(ctx.output([bh, T, dk], 'f32', 'dq')),
      dk: scope.track(ctx.output([bh, T, dk], 'f32', 'dk')),
      dv: scope.track(ctx.output([bh, T, dv], 'f32', 'dv')),
      dbeta: scope.track(ctx.output([bh], 'f32', 'dbeta')),
    };
    ovqBackwardGpu(state, { ...t, seqLen: T }, dout, out, grads);
    const dbetaPerHead = await ctx.readF32(grads.dbeta);
    let dbeta = 0;
    for (const x of dbetaPerHead) dbeta += x;
    const result = {
      output: await ctx.readF32(out),
      dq: await ctx.readF32(grads.dq),
      dk: await ctx.readF32(grads.dk),
      dv: await ctx.readF32(grads.dv),
      dbeta,
      dbetaPerHead,
    };
    await ctx.checkErrors();
    return result;
  } finally {
    state.dispose();
    scope.dispose();
  }
}
