// What every @ovq/webgpu-backed tfjs kernel needs from tfjs-backend-webgpu: the backend's own
// GPUDevice (one @ovq/webgpu GpuContext per device), the tensors' own GPUBuffers wrapped as
// borrowed GpuTensors (no copies, never destroyed by @ovq/webgpu), and the flush that orders
// tfjs' pending commands before ours.
import { GpuContext, GpuTensor } from '@ovq/webgpu';
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

/** The parts of tfjs-backend-webgpu's WebGPUBackend these kernels use. */
export type WebGpuBackendLike = {
  device: GPUDevice;
  tensorMap: { get(dataId: object): { resource?: unknown } | undefined };
  uploadToGPU(dataId: object): void;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
  makeTensorInfo(shape: number[], dtype: DataType): TensorInfo;
  disposeData(dataId: object): boolean;
};

export type KernelArgs = { inputs: NamedTensorInfoMap; backend: unknown; attrs?: NamedAttrMap };

// tfjs owns its buffers: a wrapped buffer must never be destroyed by @ovq/webgpu.
const borrowed = { release(): void {} };

const contexts = new WeakMap<GPUDevice, GpuContext>();

export function contextFor(device: GPUDevice): GpuContext {
  let ctx = contexts.get(device);
  if (!ctx) {
    ctx = new GpuContext(device);
    contexts.set(device, ctx);
  }
  return ctx;
}

/** Testing aid: makes `ctx` the context of its device (e.g. one that poisons outputs with NaN). */
export function setContextFor(ctx: GpuContext): void {
  contexts.set(ctx.device, ctx);
}

/** The tensor's GPUBuffer (uploaded first if it still lives on the CPU) as a borrowed GpuTensor. */
export function wrapTensor(
  backend: WebGpuBackendLike,
  kernelName: string,
  info: TensorInfo,
  shape: number[],
  label: string,
  dtype: GpuTensor['dtype'] = 'f32',
): GpuTensor {
  backend.uploadToGPU(info.dataId);
  const buffer = backend.tensorMap.get(info.dataId)?.resource as GPUBuffer | undefined;
  if (!buffer) throw new Error(`${kernelName}: ${label} has no GPU buffer after upload`);
  return new GpuTensor(buffer, shape, dtype, label, borrowed);
}

// tfjs batches its commands: those that produce our inputs must reach the queue before ours.
// Same sequence tfjs uses before its own reads.
export function flushTfjsCommands(backend: WebGpuBackendLike): void {
  backend.ensureCommandEncoderReady();
  backend.endComputePassEncoder();
  backend.submitQueue();
}

/** Batch, heads, sequence length and widths of [batch, heads, seqLen, dim] q and v inputs. */
export function qkvDims(inputs: NamedTensorInfoMap) {
  const [B, H, T, dk] = (inputs.q as TensorInfo).shape;
  const dv = (inputs.v as TensorInfo).shape[3];
  return { BH: B * H, B, H, T, dk, dv };
}

/**
 * Registers, once, the webgpu kernel `name`, its backward `${name}Grad` (inputs: dy and the named
 * inputs; outputs: their gradients in `inputNames` order) and the tfjs gradient joining them.
 */
export function registerWebGpuKernelWithGradient(
  name: string,
  inputNames: readonly string[],
  forward: (args: KernelArgs) => TensorInfo,
  backward: (args: KernelArgs) => TensorInfo[],
): void {
  if (!getKernel(name, 'webgpu')) {
    registerKernel({ kernelName: name, backendName: 'webgpu', kernelFunc: forward as never });
    registerKernel({
      kernelName: `${name}Grad`,
      backendName: 'webgpu',
      kernelFunc: backward as never,
    });
  }
  if (getGradient(name)) return;
  registerGradient({
    kernelName: name,
    inputsToSave: [...inputNames],
    gradFunc: (dy, saved, attrs) => {
      const inputs = Object.fromEntries(inputNames.map((n, i) => [n, saved[i]]));
      const grads = engine().runKernel(
        `${name}Grad`,
        { dy: dy as Tensor, ...inputs },
        attrs,
      ) as Tensor[];
      return Object.fromEntries(inputNames.map((n, i) => [n, () => grads[i]]));
    },
  });
}
