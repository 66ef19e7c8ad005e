// OVQ-attention on the tfjs `webgpu` backend: runs @ovq/webgpu's forward and backward on the
// backend's own GPUDevice and on the tensors' own GPUBuffers, with no host round trip.
//
// @ovq/webgpu's state holds one β for every head, and a kernel cannot read a GPU tensor
// synchronously, so the op folds the per-head β into the (already normalised) queries with tfjs
// ops (β scales the queries for the 'dot' read, √β both queries and keys for the 'gaussian' one;
// see ops/ovq.ts). This kernel therefore runs with β = 1 and normalize = false, and tfjs autodiff
// handles the normalisation and the β scaling.
import {
  createGpuOvqState,
  type GpuContext,
  type GpuOvqState,
  ovqBackwardGpu,
  ovqForwardGpu,
  TensorScope,
} from '@ovq/webgpu';
import { engine, type Tensor, type Tensor4D, type TensorInfo } from '@tensorflow/tfjs-core';
import {
  contextFor,
  flushTfjsCommands,
  type KernelArgs,
  qkvDims,
  registerWebGpuKernelWithGradient,
  type WebGpuBackendLike,
  wrapTensor,
} from './webgpu-bridge.js';

export const WEBGPU_KERNEL = 'OvqAttentionWebGpu';

function disposeStateWhenDone(ctx: GpuContext, state: GpuOvqState): void {
  ctx.device.queue.onSubmittedWorkDone().then(
    () => state.dispose(),
    () => state.dispose(),
  );
}

function forward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = qkvDims(inputs);
  const out = be.makeTensorInfo([B, H, T, dv], 'float32');
  const ctx = contextFor(be.device);
  const state = createGpuOvqState(
    ctx,
    { batchHeads: BH, keyDim: dk, valueDim: dv },
    JSON.parse(attrs?.config as string),
  );
  const q = wrapTensor(be, WEBGPU_KERNEL, inputs.q as TensorInfo, [BH, T, dk], 'q');
  const k = wrapTensor(be, WEBGPU_KERNEL, inputs.k as TensorInfo, [BH, T, dk], 'k');
  const v = wrapTensor(be, WEBGPU_KERNEL, inputs.v as TensorInfo, [BH, T, dv], 'v');
  const o = wrapTensor(be, WEBGPU_KERNEL, out, [BH, T, dv], 'output');
  flushTfjsCommands(be);
  try {
    ctx.disposeWhenDone(ovqForwardGpu(state, { q, k, v, seqLen: T }, o).scope);
  } finally {
    disposeStateWhenDone(ctx, state);
  }
  return out;
}

function backward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = qkvDims(inputs);
  const outs = [
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dv], 'float32'),
  ];
  const ctx = contextFor(be.device);
  const state = createGpuOvqState(
    ctx,
    { batchHeads: BH, keyDim: dk, valueDim: dv },
    JSON.parse(attrs?.config as string),
  );
  const scratch = new TensorScope();
  const input = {
    q: wrapTensor(be, WEBGPU_KERNEL, inputs.q as TensorInfo, [BH, T, dk], 'q'),
    k: wrapTensor(be, WEBGPU_KERNEL, inputs.k as TensorInfo, [BH, T, dk], 'k'),
    v: wrapTensor(be, WEBGPU_KERNEL, inputs.v as TensorInfo, [BH, T, dv], 'v'),
    seqLen: T,
  };
  const dout = wrapTensor(be, WEBGPU_KERNEL, inputs.dy as TensorInfo, [BH, T, dv], 'dOutput');
  const grads = {
    dq: wrapTensor(be, WEBGPU_KERNEL, outs[0], [BH, T, dk], 'dq'),
    dk: wrapTensor(be, WEBGPU_KERNEL, outs[1], [BH, T, dk], 'dk'),
    dv: wrapTensor(be, WEBGPU_KERNEL, outs[2], [BH, T, dv], 'dv'),
    // β is 1 here (folded into q by the op): its gradient comes from tfjs autodiff instead.
    dbeta: scratch.track(ctx.output([BH], 'f32', 'dbeta')),
  };
  const recomputed = scratch.track(ctx.output([BH, T, dv], 'f32', 'output'));
  flushTfjsCommands(be);
  try {
    ovqBackwardGpu(state, input, dout, recomputed, grads);
  } finally {
    ctx.disposeWhenDone(scratch);
    disposeStateWhenDone(ctx, state);
  }
  return outs;
}

/** Registers the webgpu forward/backward kernels and the gradient (idempotent, on first use). */
export function ensureWebGpuOvq(): void {
  registerWebGpuKernelWithGradient(WEBGPU_KERNEL, ['q', 'k', 'v'], forward, backward);
}

/**
 * Streaming on the GPU: appends q, k [B, H, n, dk] and v [B, H, n, dv] (webgpu tensors, already
 * normalised and β-folded as the op does) to `state` (B·H heads, β = 1, normalize = false) and
 * returns the outputs [B, H, n, dv] as a webgpu tensor. The tensors' own buffers feed the kernels
 * and the output stays on the GPU: nothing is read back.
 */
export function ovqAppendWebGpu(state: GpuOvqState, q: Tensor, k: Tensor, v: Tensor): Tensor4D {
  const be = engine().backend as unknown as WebGpuBackendLike;
  const [B, H, n, dk] = q.shape;
  const dv = v.shape[3] as number;
  const BH = B * H;
  const ctx = state.ctx;
  if (be.device !== ctx.device) {
    throw new Error(
      `${WEBGPU_KERNEL}: the streaming state lives on another GPUDevice than the webgpu backend's`,
    );
  }
  const out = be.makeTensorInfo([B, H, n, dv], 'float32');
  try {
    const input = {
      q: wrapTensor(be, WEBGPU_KERNEL, q, [BH, n, dk], 'q'),
      k: wrapTensor(be, WEBGPU_KERNEL, k, [BH, n, dk], 'k'),
      v: wrapTensor(be, WEBGPU_KERNEL, v, [BH, n, dv], 'v'),
      seqLen: n,
    };
    const o = wrapTensor(be, WEBGPU_KERNEL, out, [BH, n, dv], 'output');
    flushTfjsCommands(be);
    // Testing aid: a token the kernels skip stays NaN.
    if (ctx.poisonOutputs && o.length > 0) {
      ctx.device.queue.writeBuffer(o.buffer, 0, new Float32Array(o.length).fill(Number.NaN));
    }
    ctx.disposeWhenDone(ovqForwardGpu(state, input, o).scope);
  } catch (error) {
    be.disposeData(out.dataId);
    throw error;
  }
  return engine().makeTensorFromTensorInfo(out) as Tensor4D;
}
