/// <reference types="@webgpu/types" preserve="true" />
export * from './device/index.js';
export { GpuContext } from './gpu/context.js';
export { WebGpuError } from './gpu/errors.js';
export { GpuTensor, TensorScope } from './gpu/tensor.js';
export type { HeadsDims } from './gpu/validate.js';
export * from './ops/attention.js';
export * from './ops/gated-deltanet.js';
export * from './ops/linear.js';
export * from './ops/matmul.js';
export {
  decodeTrace,
  type OvqCallOptions,
  type OvqInput,
  ovqAppend,
  ovqAttention,
  ovqAttentionBackward,
} from './ovq/api.js';
export {
  type OvqGradTensors,
  type OvqSavedForward,
  ovqBackwardFromSavedGpu,
  ovqBackwardGpu,
} from './ovq/backward.js';
export {
  type AbsorbMeta,
  CHUNKS_PER_SUBMIT,
  type ForwardDispatches,
  type ForwardRecord,
  type OvqForwardOptions,
  ovqForwardGpu,
  ovqReadPassGpu,
  ovqSavedShapes,
} from './ovq/forward.js';
export {
  createGpuOvqState,
  GpuOvqState,
  type OvqStateDims,
  readOvqState,
  serializeGpuOvqState,
  uploadOvqState,
} from './ovq/state.js';
