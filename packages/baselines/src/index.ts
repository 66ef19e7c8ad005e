// @ovq/baselines: the attention layers OVQ is compared with. Each mixer has a float64 reference,
// a Float32 fast path, a streaming state and exact backward passes (see README.md).
export type { Dims, FloatArray, SeqInput } from './common.js';
export { STATE_FORMAT, STATE_VERSION } from './common.js';
export * from './decay-linear/index.js';
export * from './gated-deltanet/index.js';
export * from './kvm/index.js';
export * from './linear/index.js';
export * from './softmax/index.js';
export { MIXERS, type MixerConfigs, type MixerName, stateSize } from './state-size.js';
export { BaselineInputError } from './validate.js';
export * from './vq/index.js';
