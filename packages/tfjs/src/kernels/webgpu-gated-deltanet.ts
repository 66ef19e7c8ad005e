// Gated DeltaNet on the tfjs `webgpu` backend: runs @ovq/webgpu's WGSL forward and backward on the
// backend's own GPUDevice and on the tensors' own GPUBuffers, with no host round trip. Scratch is
// O(T·dk + T·dk·dv/64 + dk·dv·64) per head (chunk-boundary states and one chunk of per-token
// states), instead of the composition's chunked UT/WY matrices and per-op intermediates.
import { createGatedDeltaNetState, type GatedDeltaNetConfig } from '@ovq/baselines';
import {
  GpuContext,
  GpuTensor,
  gatedDeltaNetBackwardGpu,
  gatedDeltaNetForwardGpu,
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
  type Tensor4D,
  type TensorInfo,
  zeros,
} from '@tensorflow/tfjs-core';

export const WEBGPU_GDN_KERNEL = 'OvqGatedDeltaNetWebGpu';

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
  if (!buffer) throw new Error(`${WEBGPU_GDN_KERNEL}: ${label} has no GPU buffer after upload`);
  return new GpuTensor(buffer, shape, 'f32', label, borrowed);
}

// tfjs batches its commands: those that produce our inputs must reach the queue before ours.
// Same sequence tfjs uses before its own reads.
function flush(backend: WebGpuBackendLike): void {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
}

type KernelArgs = { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap };

function dims(inputs: NamedTensorInfoMap) {
  const [B, H, T, dk] = (inputs.q as TensorInfo).shape;
  const dv = (inputs.v as TensorInfo).shape[3];
  return { BH: B * H, B, H, T, dk, dv };
}

function wrapInputs(be: WebGpuBackendLike, inputs: NamedTensorInfoMap) {
  const { BH, T, dk, dv } = dims(inputs);
  return {
    q: wrap(be, inputs.q as TensorInfo, [BH, T, dk], 'q'),
    k: wrap(be, inputs.k as TensorInfo, [BH, T, dk], 'k'),
    v: wrap(be, inputs.v as TensorInfo, [BH, T, dv], 'v'),
    alpha: wrap(be, inputs.alpha as TensorInfo, [BH, T], 'alpha'),
    beta: wrap(be, inputs.beta as TensorInfo, [BH, T], 'beta'),
  };
}

function forward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = dims(inputs);
  const out = be.makeTensorInfo([B, H, T, dv], 'float32');
  const ctx = contextFor(be.device);
  const tensors = wrapInputs(be, inputs);
  const o = wrap(be, out, [BH, T, dv], 'output');
  flush(be);
  gatedDeltaNetForwardGpu(
    ctx,
    { batchHeads: BH, seqLen: T, keyDim: dk, valueDim: dv },
    JSON.parse(attrs?.config as string),
    { ...tensors, out: o },
  );
  return out;
}

function backward({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = dims(inputs);
  const outs = [
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dv], 'float32'),
    be.makeTensorInfo([B, H, T], 'float32'),
    be.makeTensorInfo([B, H, T], 'float32'),
  ];
  const ctx = contextFor(be.device);
  const tensors = wrapInputs(be, inputs);
  const dOutput = wrap(be, inputs.dy as TensorInfo, [BH, T, dv], 'dOutput');
  const grads = {
    dq: wrap(be, outs[0], [BH, T, dk], 'dq'),
    dk: wrap(be, outs[1], [BH, T, dk], 'dk'),
    dv: wrap(be, outs[2], [BH, T, dv], 'dv'),
    dAlpha: wrap(be, outs[3], [BH, T], 'dAlpha'),
    dBeta: wrap(be, outs[4], [BH, T], 'dBeta'),
  };
  flush(be);
  gatedDeltaNetBackwardGpu(
    ctx,
    { batchHeads: BH, seqLen: T, keyDim: dk, valueDim: dv },
    JSON.parse(attrs?.config as string),
    { ...tensors, dOutput },
    grads,
  );
  return outs;
}

/** Registers the webgpu forward/backward kernels and the gradient (idempotent, on first use). */
export function ensureWebGpuGatedDeltaNet(): void {
  if (!getKernel(WEBGPU_GDN_KERNEL, 'webgpu')) {
    registerKernel({
      kernelName: WEBGPU_GDN_KERNEL,
      backendName: 'webgpu',
      kernelFunc: forward as never,
    });
    registerKernel({
      kernelName: `${WEBGPU_GDN_KERNEL}Grad`,
      backendName: 'webgpu',
      kernelFunc: backward as never,
    });
  }
  if (getGradient(WEBGPU_GDN_KERNEL)) return;
  registerGradient({
    kernelName: WEBGPU_GDN_KERNEL,
    inputsToSave: ['q', 'k', 'v', 'alpha', 'beta'],
    gradFunc: (dy, saved, attrs) => {
      const [q, k, v, alpha, beta] = saved;
      const grads = engine().runKernel(
        `${WEBGPU_GDN_KERNEL}Grad`,
        { dy: dy as Tensor, q, k, v, alpha, beta },
        attrs,
      ) as Tensor[];
      return {
        q: () => grads[0],
        k: () => grads[1],
        v: () => grads[2],
        alpha: () => grads[3],
        beta: () => grads[4],
      };
    },
  });
}

/**
 * The gatedDeltaNet op on the webgpu backend (inputs already checked by the op): q, k
 * [B, H, T, dk], v [B, H, T, dv], alpha, beta [B, H, T] → [B, H, T, dv].
 */
export function gatedDeltaNetWebGpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  alpha: Tensor,
  beta: Tensor,
  config: GatedDeltaNetConfig,
): Tensor4D {
  const [B, H, T, dk] = q.shape;
  const dv = v.shape[3] as number;
  // @ovq/baselines resolves (and checks) the config, so errors read as on the other backends.
  const { scale } = createGatedDeltaNetState({ keyDim: dk as number, valueDim: dv }, config).config;
  if (T === 0) return zeros([B, H, 0, dv]);
  ensureWebGpuGatedDeltaNet();
  return engine().runKernel(
    WEBGPU_GDN_KERNEL,
    { q, k, v, alpha, beta },
    { config: JSON.stringify({ scale }) },
  ) as Tensor4D;
}
