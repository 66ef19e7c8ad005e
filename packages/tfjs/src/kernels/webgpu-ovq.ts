// OVQ-attention on the tfjs `webgpu` backend: runs @ovq/webgpu's forward and backward on the
// backend's own GPUDevice and on the tensors' own GPUBuffers, with no host round trip.
//
// @ovq/webgpu's state holds one β for every head, and a kernel cannot read a GPU tensor
// synchronously, so the op folds the per-head β into the (already normalised) queries with tfjs
// ops: β·q̂·μ = (β q̂)·μ for the 'dot' read. This kernel therefore runs with β = 1 and
// normalize = false, and tfjs autodiff handles the normalisation and the β scaling.
import {
  createGpuOvqState,
  GpuContext,
  type GpuOvqState,
  GpuTensor,
  ovqBackwardGpu,
  ovqForwardGpu,
  TensorScope,
} from '@ovq/webgpu';
import {
  type DataType,
  engine,
  getGradient,
  getKernel,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  registerGradient,
  registerKernel,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';

export const WEBGPU_KERNEL = 'OvqAttentionWebGpu';

/** The parts of tfjs-backend-webgpu's WebGPUBackend these kernels use. */
type WebGpuBackendLike = {
  device: GPUDevice;
  tensorMap: { get(dataId: object): { resource?: unknown } | undefined };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeTensorInfo(shape: number[], dtype: DataType): TensorInfo;
};

// tfjs owns its buffers: a wrapped buffer must never be destroyed by @ovq/webgpu.
const borrowed = { release(): void {} };

const contexts = new WeakMap<GPUDevice, GpuContext>();

function contextFor(device: GPUDevice): GpuContext {
  let ctx = contexts.get(device);
  if (!ctx) {
    ctx = new GpuContext(device);
    contexts.set(device, ctx);
  }
  return ctx;
}

function wrap(backend: WebGpuBackendLike, info: TensorInfo, shape: number[], label: string) {
  backend.uploadToGPU(info.dataId);
  const buffer = backend.tensorMap.get(info.dataId)?.resource as GPUBuffer | undefined;
  if (!buffer) throw new Error(`${WEBGPU_KERNEL}: ${label} has no GPU buffer after upload`);
  return new GpuTensor(buffer, shape, 'f32', label, borrowed);
}

// tfjs batches its commands: those that produce our inputs must reach the queue before ours.
// Same sequence tfjs uses before its own reads.
function flush(backend: WebGpuBackendLike): void {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
}

function disposeStateWhenDone(ctx: GpuContext, state: GpuOvqState): void {
  ctx.device.queue.onSubmittedWorkDone().then(
    () => state.dispose(),
    () => state.dispose(),
  );
}

type KernelArgs = { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap };

function dims(inputs: NamedTensorInfoMap) {
  const [B, H, T, dk] = (inputs.q as TensorInfo).shape;
  const dv = (inputs.v as TensorInfo).shape[3];
  return { BH: B * H, B, H, T, dk, dv };
}

function forward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = dims(inputs);
  const out = be.makeTensorInfo([B, H, T, dv], 'float32');
  const ctx = contextFor(be.device);
  const state = createGpuOvqState(
    ctx,
    { batchHeads: BH, keyDim: dk, valueDim: dv },
    JSON.parse(attrs?.config as string),
  );
  const q = wrap(be, inputs.q as TensorInfo, [BH, T, dk], 'q');
  const k = wrap(be, inputs.k as TensorInfo, [BH, T, dk], 'k');
  const v = wrap(be, inputs.v as TensorInfo, [BH, T, dv], 'v');
  const o = wrap(be, out, [BH, T, dv], 'output');
  flush(be);
  try {
    ctx.disposeWhenDone(ovqForwardGpu(state, { q, k, v, seqLen: T }, o).scope);
  } finally {
    disposeStateWhenDone(ctx, state);
  }
  return out;
}

function backward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = dims(inputs);
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
    q: wrap(be, inputs.q as TensorInfo, [BH, T, dk], 'q'),
    k: wrap(be, inputs.k as TensorInfo, [BH, T, dk], 'k'),
    v: wrap(be, inputs.v as TensorInfo, [BH, T, dv], 'v'),
    seqLen: T,
  };
  const dout = wrap(be, inputs.dy as TensorInfo, [BH, T, dv], 'dOutput');
  const grads = {
    dq: wrap(be, outs[0], [BH, T, dk], 'dq'),
    dk: wrap(be, outs[1], [BH, T, dk], 'dk'),
    dv: wrap(be, outs[2], [BH, T, dv], 'dv'),
    // β is 1 here (folded into q by the op): its gradient comes from tfjs autodiff instead.
    dbeta: scratch.track(ctx.output([BH], 'f32', 'dbeta')),
  };
  const recomputed = scratch.track(ctx.output([BH, T, dv], 'f32', 'output'));
  flush(be);
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
  if (!getKernel(WEBGPU_KERNEL, 'webgpu')) {
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
  if (getGradient(WEBGPU_KERNEL)) return;
  registerGradient({
    kernelName: WEBGPU_KERNEL,
    inputsToSave: ['q', 'k', 'v'],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v] = saved;
      const grads = engine().runKernel(
        `${WEBGPU_KERNEL}Grad`,
        { dy: dy as Tensor, q, k, v },
        attrs,
      ) as Tensor[];
      return { q: () => grads[0], k: () => grads[1], v: () => grads[2] };
    },
  });
}
