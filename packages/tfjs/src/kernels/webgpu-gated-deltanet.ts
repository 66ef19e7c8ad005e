// Gated DeltaNet on the tfjs `webgpu` backend: runs @ovq/webgpu's WGSL forward and backward on the
// backend's own GPUDevice and on the tensors' own GPUBuffers, with no host round trip. Scratch is
// O(T·dk + T·dk·dv/64 + dk·dv·64) per head (chunk-boundary states and one chunk of per-token
// states), instead of the composition's chunked UT/WY matrices and per-op intermediates.
import { createGatedDeltaNetState, type GatedDeltaNetConfig } from '@ovq/baselines';
import { gatedDeltaNetBackwardGpu, gatedDeltaNetForwardGpu } from '@ovq/webgpu';
import {
  engine,
  type NamedTensorInfoMap,
  type Tensor,
  type Tensor4D,
  type TensorInfo,
  zeros,
} from '@tensorflow/tfjs-core';
import {
  contextFor,
  flushTfjsCommands,
  type KernelArgs,
  qkvDims,
  registerWebGpuKernelWithGradient,
  type WebGpuBackendLike,
  wrapTensor,
} from './webgpu-bridge.js';

export const WEBGPU_GDN_KERNEL = 'OvqGatedDeltaNetWebGpu';

function wrapInputs(be: WebGpuBackendLike, inputs: NamedTensorInfoMap) {
  const { BH, T, dk, dv } = qkvDims(inputs);
  return {
    q: wrapTensor(be, WEBGPU_GDN_KERNEL, inputs.q as TensorInfo, [BH, T, dk], 'q'),
    k: wrapTensor(be, WEBGPU_GDN_KERNEL, inputs.k as TensorInfo, [BH, T, dk], 'k'),
    v: wrapTensor(be, WEBGPU_GDN_KERNEL, inputs.v as TensorInfo, [BH, T, dv], 'v'),
    alpha: wrapTensor(be, WEBGPU_GDN_KERNEL, inputs.alpha as TensorInfo, [BH, T], 'alpha'),
    beta: wrapTensor(be, WEBGPU_GDN_KERNEL, inputs.beta as TensorInfo, [BH, T], 'beta'),
  };
}

function forward({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const be = backend as WebGpuBackendLike;
  const { BH, B, H, T, dk, dv } = qkvDims(inputs);
  const out = be.makeTensorInfo([B, H, T, dv], 'float32');
  const ctx = contextFor(be.device);
  const tensors = wrapInputs(be, inputs);
  const o = wrapTensor(be, WEBGPU_GDN_KERNEL, out, [BH, T, dv], 'output');
  flushTfjsCommands(be);
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
  const { BH, B, H, T, dk, dv } = qkvDims(inputs);
  const outs = [
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dk], 'float32'),
    be.makeTensorInfo([B, H, T, dv], 'float32'),
    be.makeTensorInfo([B, H, T], 'float32'),
    be.makeTensorInfo([B, H, T], 'float32'),
  ];
  const ctx = contextFor(be.device);
  const tensors = wrapInputs(be, inputs);
  const dOutput = wrapTensor(
    be,
    WEBGPU_GDN_KERNEL,
    inputs.dy as TensorInfo,
    [BH, T, dv],
    'dOutput',
  );
  const grads = {
    dq: wrapTensor(be, WEBGPU_GDN_KERNEL, outs[0], [BH, T, dk], 'dq'),
    dk: wrapTensor(be, WEBGPU_GDN_KERNEL, outs[1], [BH, T, dk], 'dk'),
    dv: wrapTensor(be, WEBGPU_GDN_KERNEL, outs[2], [BH, T, dv], 'dv'),
    dAlpha: wrapTensor(be, WEBGPU_GDN_KERNEL, outs[3], [BH, T], 'dAlpha'),
    dBeta: wrapTensor(be, WEBGPU_GDN_KERNEL, outs[4], [BH, T], 'dBeta'),
  };
  flushTfjsCommands(be);
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
  registerWebGpuKernelWithGradient(
    WEBGPU_GDN_KERNEL,
    ['q', 'k', 'v', 'alpha', 'beta'],
    forward,
    backward,
  );
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
