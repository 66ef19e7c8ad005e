// Gated DeltaNet (Yang et al. 2025) forward and backward, matching @ovq/baselines' gatedDeltaNet /
// gatedDeltaNetBackward: q̂, k̂ L2-normalised, S_t = α_t (I − β_t k̂_t k̂_tᵀ) S_{t−1} + β_t k̂_t v_tᵀ,
// y_t = scale·S_tᵀ q̂_t, from an empty state. Layout: q, k [BH, T, dk], v and outputs [BH, T, dv],
// alpha, beta [BH, T]. Memory beyond inputs and outputs: O(T·(dk + dv·dk/C)) per head for the
// forward; the backward adds two [C+1, dk, dv] chunk buffers per head (C = 64).
import type { GpuContext } from '../gpu/context.js';
import { WebGpuError } from '../gpu/errors.js';
import { ceilDiv } from '../gpu/program.js';
import type { Recorder } from '../gpu/recorder.js';
import { type GpuTensor, TensorScope } from '../gpu/tensor.js';
import {
  checkArray,
  checkDims,
  checkTensor,
  type HeadsDims,
  requirePositive,
} from '../gpu/validate.js';
import {
  GdnKeyGradProgram,
  GdnQueryGradProgram,
  GdnReverseProgram,
} from '../kernels/gated-deltanet/backward.js';
import {
  GdnChunkScanProgram,
  GdnNormalizeProgram,
  paddedKeyDim,
} from '../kernels/gated-deltanet/forward.js';

/** Tokens per chunk: one dispatch each, a boundary state each, the backward's recompute unit. */
export const GDN_GPU_CHUNK = 64;

export type GatedDeltaNetGpuConfig = {
  /** Output scale applied to the normalised query; default 1/√keyDim (as @ovq/baselines). */
  scale?: number;
};

export type GatedDeltaNetInput = HeadsDims & {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  alpha: Float32Array;
  beta: Float32Array;
};

type GdnInputs = { q: GpuTensor; k: GpuTensor; v: GpuTensor; alpha: GpuTensor; beta: GpuTensor };

export type GatedDeltaNetGradTensors = {
  dq: GpuTensor;
  dk: GpuTensor;
  dv: GpuTensor;
  dAlpha: GpuTensor;
  dBeta: GpuTensor;
};

function resolveScale(config: GatedDeltaNetGpuConfig | undefined, dk: number): number {
  if (config !== undefined && (config === null || typeof config !== 'object')) {
    throw new WebGpuError('config', `got ${String(config)}; expected an object`);
  }
  return config?.scale === undefined
    ? 1 / Math.sqrt(dk)
    : requirePositive('config.scale', config.scale);
}

/** Checkpoint slots: the state before each chunk plus the final state. */
function checkpointShape(dims: HeadsDims): number[] {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = dims;
  return [bh, ceilDiv(T, GDN_GPU_CHUNK) + 1, dk, dv];
}

function checkInputs(dims: HeadsDims, t: GdnInputs): void {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = dims;
  checkTensor('q', t.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('k', t.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('v', t.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  checkTensor('alpha', t.alpha, [bh, T], 'batchHeads*seqLen');
  checkTensor('beta', t.beta, [bh, T], 'batchHeads*seqLen');
}

/** Threads per workgroup: a power of two (the backward's tree sums need one). */
function workgroupSize(ctx: GpuContext): number {
  let wg = 1;
  while (wg * 2 <= ctx.variant.workgroupSize) wg *= 2;
  return wg;
}

/** Encodes the normalisation and the chunk scans; returns the normalised q̂/k̂ and (α, β, norms). */
function encodeForward(
  ctx: GpuContext,
  rec: Recorder,
  scope: TensorScope,
  dims: HeadsDims,
  scale: number,
  t: GdnInputs,
  ckpt: GpuTensor,
  out: GpuTensor | null,
): { qk: GpuTensor; aux: GpuTensor } {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = dims;
  const wg = workgroupSize(ctx);
  // Scratch comes from ctx.output too: every element is written before it is read, so the tests'
  // NaN poisoning checks that as well.
  const qk = scope.track(ctx.output([bh, T, 2, paddedKeyDim(dk)], 'f32', 'gdn-qk-hat'));
  const aux = scope.track(ctx.output([bh, T, 4], 'f32', 'gdn-aux'));
  rec.dispatch(new GdnNormalizeProgram(dk, wg), [t.q, t.k, t.alpha, t.beta, qk, aux], { T }, [
    ceilDiv(T, wg),
    bh,
  ]);
  const chunks = ceilDiv(T, GDN_GPU_CHUNK);
  const scan = new GdnChunkScanProgram(dk, dv, wg, out ? 'forward' : 'checkpoints');
  const buffers = out ? [qk, aux, t.v, out, ckpt] : [qk, aux, t.v, ckpt];
  for (let chunk = 0; chunk < chunks; chunk++) {
    rec.dispatch(scan, buffers, { T, C: GDN_GPU_CHUNK, chunk, chunks, scale }, [
      ceilDiv(dv, wg),
      bh,
    ]);
  }
  return { qk, aux };
}

/**
 * GPU level: writes `out` [BH, T, dv]. With `states` [BH, ⌈T/64⌉+1, dk, dv] it also keeps the state
 * before every chunk of 64 tokens and, in the last slot, the final state (each [dk, dv] as
 * @ovq/baselines' `kv`). No host round trip; scratch is destroyed once the work has run.
 */
export function gatedDeltaNetForwardGpu(
  ctx: GpuContext,
  dims: HeadsDims,
  config: GatedDeltaNetGpuConfig | undefined,
  t: GdnInputs & { out: GpuTensor; states?: GpuTensor },
): void {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(dims, true);
  const scale = resolveScale(config, dk);
  checkInputs(dims, t);
  checkTensor('out', t.out, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  const shape = checkpointShape(dims);
  if (t.states !== undefined)
    checkTensor('states', t.states, shape, 'batchHeads*(⌈seqLen/64⌉+1)*keyDim*valueDim');
  if (T === 0) return;
  const scope = new TensorScope();
  try {
    const ckpt = t.states ?? scope.track(ctx.output(shape, 'f32', 'gdn-checkpoints'));
    const rec = ctx.recorder();
    encodeForward(ctx, rec, scope, dims, scale, t, ckpt, t.out);
    rec.submit();
  } finally {
    ctx.disposeWhenDone(scope);
  }
}

/**
 * GPU level: the gradients of Σ dOutput∘output with respect to q, k, v, alpha, beta. Re-runs the
 * forward for the chunk-boundary states, then walks the chunks in reverse: recompute the chunk's
 * per-token states, carry ∂L/∂S back over its tokens, then the token-parallel sums.
 */
export function gatedDeltaNetBackwardGpu(
  ctx: GpuContext,
  dims: HeadsDims,
  config: GatedDeltaNetGpuConfig | undefined,
  t: GdnInputs & { dOutput: GpuTensor },
  grads: GatedDeltaNetGradTensors,
): void {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(dims, true);
  const scale = resolveScale(config, dk);
  checkInputs(dims, t);
  checkTensor('dOutput', t.dOutput, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  checkTensor('dq', grads.dq, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('dk', grads.dk, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  checkTensor('dv', grads.dv, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  checkTensor('dAlpha', grads.dAlpha, [bh, T], 'batchHeads*seqLen');
  checkTensor('dBeta', grads.dBeta, [bh, T], 'batchHeads*seqLen');
  if (T === 0) return;
  const C = GDN_GPU_CHUNK;
  const chunks = ceilDiv(T, C);
  const wg = workgroupSize(ctx);
  const scope = new TensorScope();
  try {
    const ckpt = scope.track(ctx.output(checkpointShape(dims), 'f32', 'gdn-checkpoints'));
    const states = scope.track(ctx.output([bh, C + 1, dk, dv], 'f32', 'gdn-chunk-states'));
    const gs = scope.track(ctx.output([bh, C + 1, dk, dv], 'f32', 'gdn-chunk-grads'));
    const vecs = scope.track(ctx.output([bh, C, dv, 4], 'f32', 'gdn-chunk-vectors'));
    const rec = ctx.recorder();
    const { qk, aux } = encodeForward(ctx, rec, scope, dims, scale, t, ckpt, null);
    const recompute = new GdnChunkScanProgram(dk, dv, wg, 'recompute');
    const reverse = new GdnReverseProgram(dk, dv, wg);
    const queryGrad = new GdnQueryGradProgram(dk, dv, wg);
    const keyGrad = new GdnKeyGradProgram(dk, dv, wg);
    const columns: [number, number] = [ceilDiv(dv, wg), bh];
    for (let chunk = chunks - 1; chunk >= 0; chunk--) {
      const tokens = Math.min(T, (chunk + 1) * C) - chunk * C;
      rec.dispatch(
        recompute,
        [qk, aux, t.v, ckpt, states],
        { T, C, chunk, chunks, scale },
        columns,
      );
      rec.dispatch(
        reverse,
        [qk, aux, t.v, t.dOutput, states, gs, vecs, grads.dv],
        { T, C, chunk, scale, last: chunk === chunks - 1 ? 1 : 0 },
        columns,
      );
      rec.dispatch(queryGrad, [qk, aux, t.dOutput, states, grads.dq], { T, C, chunk, scale }, [
        tokens,
        bh,
      ]);
      rec.dispatch(
        keyGrad,
        [qk, aux, states, gs, vecs, grads.dk, grads.dAlpha, grads.dBeta],
        { T, C, chunk },
        [tokens, bh],
      );
    }
    rec.submit();
  } finally {
    ctx.disposeWhenDone(scope);
  }
}

function uploadInputs(ctx: GpuContext, scope: TensorScope, input: GatedDeltaNetInput): GdnInputs {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(input, true);
  const q = checkArray('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const k = checkArray('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim');
  const v = checkArray('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  const alpha = checkArray('alpha', input.alpha, [bh, T], 'batchHeads*seqLen');
  const beta = checkArray('beta', input.beta, [bh, T], 'batchHeads*seqLen');
  return {
    q: scope.track(ctx.upload(q, [bh, T, dk], 'f32', 'q')),
    k: scope.track(ctx.upload(k, [bh, T, dk], 'f32', 'k')),
    v: scope.track(ctx.upload(v, [bh, T, dv], 'f32', 'v')),
    alpha: scope.track(ctx.upload(alpha, [bh, T], 'f32', 'alpha')),
    beta: scope.track(ctx.upload(beta, [bh, T], 'f32', 'beta')),
  };
}

/**
 * Convenience level: outputs [BH, T, dv] and the final state of each head ([BH, dk, dv], each as
 * @ovq/baselines' `kv`).
 */
export async function gatedDeltaNetForward(
  ctx: GpuContext,
  input: GatedDeltaNetInput,
  config?: GatedDeltaNetGpuConfig,
): Promise<{ output: Float32Array; state: Float32Array }> {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(input, true);
  resolveScale(config, dk);
  const scope = new TensorScope();
  try {
    const inputs = uploadInputs(ctx, scope, input);
    await ctx.assertUsableAsync();
    const out = scope.track(ctx.output([bh, T, dv], 'f32', 'out'));
    const states = scope.track(ctx.output(checkpointShape(input), 'f32', 'states'));
    if (T === 0) return { output: new Float32Array(0), state: new Float32Array(bh * dk * dv) };
    gatedDeltaNetForwardGpu(ctx, input, config, { ...inputs, out, states });
    const output = await ctx.readF32(out);
    const all = await ctx.readF32(states);
    await ctx.checkErrors();
    const slots = checkpointShape(input)[1];
    const size = dk * dv;
    const state = new Float32Array(bh * size);
    for (let h = 0; h < bh; h++) {
      state.set(all.subarray((h * slots + slots - 1) * size, (h * slots + slots) * size), h * size);
    }
    return { output, state };
  } finally {
    scope.dispose();
  }
}

/** Convenience level: gradients of Σ dOutput∘output (dOutput [BH, T, dv]). */
export async function gatedDeltaNetBackward(
  ctx: GpuContext,
  input: GatedDeltaNetInput,
  config: GatedDeltaNetGpuConfig | undefined,
  dOutput: Float32Array,
): Promise<{
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  dAlpha: Float32Array;
  dBeta: Float32Array;
}> {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = checkDims(input, true);
  resolveScale(config, dk);
  const dy = checkArray('dOutput', dOutput, [bh, T, dv], 'batchHeads*seqLen*valueDim');
  const scope = new TensorScope();
  try {
    const inputs = uploadInputs(ctx, scope, input);
    await ctx.assertUsableAsync();
    const grads = {
      dq: scope.track(ctx.output([bh, T, dk], 'f32', 'dq')),
      dk: scope.track(ctx.output([bh, T, dk], 'f32', 'dk')),
      dv: scope.track(ctx.output([bh, T, dv], 'f32', 'dv')),
      dAlpha: scope.track(ctx.output([bh, T], 'f32', 'dAlpha')),
      dBeta: scope.track(ctx.output([bh, T], 'f32', 'dBeta')),
    };
    const dOut = scope.track(ctx.upload(dy, [bh, T, dv], 'f32', 'dOutput'));
    gatedDeltaNetBackwardGpu(ctx, input, config, { ...inputs, dOutput: dOut }, grads);
    const result = {
      dq: await ctx.readF32(grads.dq),
      dk: await ctx.readF32(grads.dk),
      dv: await ctx.readF32(grads.dv),
      dAlpha: await ctx.readF32(grads.dAlpha),
      dBeta: await ctx.readF32(grads.dBeta),
    };
    await ctx.checkErrors();
    return result;
  } finally {
    scope.dispose();
  }
}
