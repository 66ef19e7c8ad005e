export * from './device/index.js';
export { GpuContext } from './gpu/context.js';
export { WebGpuError } from './gpu/errors.js';
export { GpuTensor, TensorScope } from './gpu/tensor.js';
export type { HeadsDims } from './gpu/validate.js';
export * from './ops/attention.js';
export * from './ops/linear.js';
export * from './ops/matmul.js';
