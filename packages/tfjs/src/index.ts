// @ovq/tfjs: OVQ-attention and its baselines as TensorFlow.js ops (with gradients) and layers.
export { OvqTfjsInputError } from './errors.js';
export {
  decayLinearAttention,
  gatedDeltaNet,
  linearAttention,
  softmaxAttention,
  vqAttention,
} from './ops/baselines.js';
export { type OvqOpConfig, ovqAttention, resolveOvqOpConfig } from './ops/ovq.js';
