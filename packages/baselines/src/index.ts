export type { Dims, FloatArray, SeqInput } from './common.js';
export { STATE_FORMAT, STATE_VERSION } from './common.js';
export * from './decay-linear/index.js';
export * from './gated-deltanet/index.js';
export * from './kvm/index.js';
export * from './linear/index.js';
export * from './softmax/index.js';
export { BaselineInputError } from './validate.js';
export * from './vq/index.js';
