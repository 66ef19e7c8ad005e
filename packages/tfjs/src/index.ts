// @ovq/tfjs: OVQ-attention and its baselines as TensorFlow.js ops (with gradients) and layers.
export { OvqTfjsInputError } from './errors.js';
export { useSharedWasmClones } from './kernels/wasm-identity.js';
export { MixerLayer, type MixerLayerArgs } from './layers/base.js';
export { GatedDeltaNet, type GatedDeltaNetArgs } from './layers/gated-deltanet.js';
export { KvmAttention, type KvmAttentionArgs } from './layers/kvm.js';
export {
  DecayLinearAttention,
  type DecayLinearAttentionArgs,
  LinearAttention,
  type LinearAttentionArgs,
} from './layers/linear.js';
export { OvqAttention, type OvqAttentionArgs, type OvqHeadInputs } from './layers/ovq.js';
export { SoftmaxAttention, type SoftmaxAttentionArgs } from './layers/softmax.js';
export { VqAttention, type VqAttentionArgs, type VqCodebookHealth } from './layers/vq.js';
export {
  decayLinearAttention,
  gatedDeltaNet,
  kvmAttention,
  linearAttention,
  softmaxAttention,
  vqAttention,
} from './ops/baselines.js';
export { denseProduct, explicitMatMul } from './ops/matmul.js';
export { type OvqOpConfig, ovqAttention, resolveOvqOpConfig } from './ops/ovq.js';
export {
  type BaselineWorkerPool,
  createBaselineWorkerPool,
} from './parallel/baseline-pool.js';
export {
  baselineWorkerPool,
  hostWorkerPool,
  setBaselineWorkerPool,
  setHostWorkerPool,
} from './parallel/pool.js';
export { type DictionaryHealth, dictionaryHealth } from './streaming/ovq-health.js';
export type { MixerStreamState } from './streaming/state.js';
