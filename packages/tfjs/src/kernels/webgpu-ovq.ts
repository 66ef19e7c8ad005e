// OVQ-attention on the tfjs `webgpu` backend: runs @ovq/webgpu's forward and backward on the
// backend's own GPUDevice and on the tensors' own GPUBuffers, with no host round trip.
//
// @ovq/webgpu's state holds one β for every head, and a kernel cannot read a GPU tensor
// synchronously, so the op folds the per-head β into the (already normalised) queries with tfjs
// ops (β scales the queries for the 'dot' read, √β both queries and keys for the 'gaussian' one;
// see ops/ovq.ts). This kernel therefore runs with β = 1 and normalize = false, and tfjs autodiff
// handles the normalisation and the β scaling.
//
// The forward kernel also outputs what the backward needs — the per-query log-sum-exps and the
// absorb decisions — and a custom gradient saves them (with q, k, v and the output) on the tape,
// so the backward kernel replays the decisions instead of running the forward again. tfjs owns
// those tensors: they are disposed with the tape after the gradient, or at once when no gradient
// is being recorded.
import {
  createGpuOvqState,
  type GpuContext,
  type GpuOvqState,
  ovqBackwardFromSavedGpu,
  ovqForwardGpu,
  ovqSavedShapes,
  TensorScope,
} from '@ovq/webgpu';
import {
  customGrad,
  engine,
  type GradSaveFunc,
  getKernel,
  type NamedAttrMap,
  registerKernel,
  type Tensor,
  type Tensor4D,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import {
  contextFor,
  flushTfjsCommands,
  type KernelArgs,
  qkvDims,
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

/** Outputs: the attention output [B, H, T, dv], log-sum-exps [B, H, T], decisions (int32). */
function forward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = qkvDims(inputs);
  const ctx = contextFor(be.device);
  const dims = { batchHeads: BH, keyDim: dk, valueDim: dv };
  const state = createGpuOvqState(ctx, dims, JSON.parse(attrs?.config as string));
  const shapes = ovqSavedShapes(dims, T, state.config.chunkSize);
  const outs = [
    be.makeTensorInfo([B, H, T, dv], 'float32'),
    be.makeTensorInfo([B, H, T], 'float32'),
    be.makeTensorInfo([B, H, shapes.trace[1], shapes.trace[2]], 'int32'),
  ];
  try {
    const q = wrapTensor(be, WEBGPU_KERNEL, inputs.q as TensorInfo, [BH, T, dk], 'q');
    const k = wrapTensor(be, WEBGPU_KERNEL, inputs.k as TensorInfo, [BH, T, dk], 'k');
    const v = wrapTensor(be, WEBGPU_KERNEL, inputs.v as TensorInfo, [BH, T, dv], 'v');
    const o = wrapTensor(be, WEBGPU_KERNEL, outs[0], [BH, T, dv], 'output');
    const lse = wrapTensor(be, WEBGPU_KERNEL, outs[1], shapes.lse, 'lse');
    const trace = wrapTensor(be, WEBGPU_KERNEL, outs[2], shapes.trace, 'trace', 'i32');
    flushTfjsCommands(be);
    // Testing aid: a value the kernels skip stays NaN (a decision −7).
    if (ctx.poisonOutputs) {
      for (const t of [o, lse]) {
        ctx.device.queue.writeBuffer(t.buffer, 0, new Float32Array(t.length).fill(Number.NaN));
      }
      ctx.device.queue.writeBuffer(trace.buffer, 0, new Int32Array(trace.length).fill(-7));
    }
    const save = { lse, trace };
    ctx.disposeWhenDone(ovqForwardGpu(state, { q, k, v, seqLen: T }, o, { save }).scope);
  } catch (error) {
    for (const t of outs) be.disposeData(t.dataId);
    throw error;
  } finally {
    disposeStateWhenDone(ctx, state);
  }
  return outs;
}

/** Inputs: dy and q, k, v, output, lse, trace (the forward's); outputs dq, dk, dv. */
function backward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = qkvDims(inputs);
  const ctx = contextFor(be.device);
  const dims = { batchHeads: BH, keyDim: dk, valueDim: dv };
  const state = createGpuOvqState(ctx, dims, JSON.parse(attrs?.config as string));
  const shapes = ovqSavedShapes(dims, T, state.config.chunkSize);
  const outs = [
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dv], 'float32'),
  ];
  const scratch = new TensorScope();
  try {
    const wrap = (name: string, shape: number[], dtype: 'f32' | 'i32' = 'f32') =>
      wrapTensor(be, WEBGPU_KERNEL, inputs[name] as TensorInfo, shape, name, dtype);
    const input = {
      q: wrap('q', [BH, T, dk]),
      k: wrap('k', [BH, T, dk]),
      v: wrap('v', [BH, T, dv]),
      seqLen: T,
    };
    const saved = {
      output: wrap('output', [BH, T, dv]),
      lse: wrap('lse', shapes.lse),
      trace: wrap('trace', shapes.trace, 'i32'),
    };
    const dout = wrapTensor(be, WEBGPU_KERNEL, inputs.dy as TensorInfo, [BH, T, dv], 'dOutput');
    const grads = {
      dq: wrapTensor(be, WEBGPU_KERNEL, outs[0], [BH, T, dk], 'dq'),
      dk: wrapTensor(be, WEBGPU_KERNEL, outs[1], [BH, T, dk], 'dk'),
      dv: wrapTensor(be, WEBGPU_KERNEL, outs[2], [BH, T, dv], 'dv'),
      // β is 1 here (folded into q by the op): its gradient comes from tfjs autodiff instead.
      dbeta: scratch.track(ctx.output([BH], 'f32', 'dbeta')),
    };
    flushTfjsCommands(be);
    ovqBackwardFromSavedGpu(state, input, saved, dout, grads);
  } catch (error) {
    for (const t of outs) be.disposeData(t.dataId);
    throw error;
  } finally {
    ctx.disposeWhenDone(scratch);
    disposeStateWhenDone(ctx, state);
  }
  return outs;
}

/** Registers the webgpu forward/backward kernels (idempotent, on first use). */
export function ensureWebGpuOvq(): void {
  if (getKernel(WEBGPU_KERNEL, 'webgpu')) return;
  registerKernel({
    kernelName: WEBGPU_KERNEL,
    backendName: 'webgpu',
    kernelFunc: forward as never,
  });
  registerKernel({
    kernelName: `${WEBGPU_KERNEL}Grad`,
    backendName: 'webgpu',
    kernelFunc: backward as never,
  });
}

/**
 * Runs the webgpu kernel on q, k [B, H, T, dk] and v [B, H, T, dv] (already normalised and
 * β-folded, see ops/ovq.ts) with a gradient for q, k, v that reuses the forward's saved
 * log-sum-exps and decisions.
 */
export function ovqWebGpuKernel(q: Tensor, k: Tensor, v: Tensor, attrs: NamedAttrMap): Tensor4D {
  ensureWebGpuOvq();
  // customGrad passes the inputs, then the function that saves tensors for the gradient.
  const run = customGrad((...args: (Tensor | GradSaveFunc)[]) => {
    const [q, k, v] = args as Tensor[];
    const save = args[3] as GradSaveFunc;
    const [output, lse, trace] = engine().runKernel(WEBGPU_KERNEL, { q, k, v }, attrs) as Tensor[];
    save([q, k, v, output, lse, trace]);
    return {
      value: output,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [sq, sk, sv, so, sl, st] = saved;
        const inputs = { dy, q: sq, k: sk, v: sv, output: so, lse: sl, trace: st };
        return engine().runKernel(`${WEBGPU_KERNEL}Grad`, inputs, attrs) as Tensor[];
      },
    };
  });
  return run(q, k, v) as Tensor4D;
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
