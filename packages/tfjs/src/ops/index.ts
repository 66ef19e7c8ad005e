// @ovq/tfjs/ops: the ops alone, for users without @tensorflow/tfjs-layers (an optional peer).
export { OvqTfjsInputError } from '../errors.js';
export {
  type BaselineWorkerPool,
  createBaselineWorkerPool,
} from '../parallel/baseline-pool.js';
export {
  baselineWorkerPool,
  hostWorkerPool,
  setBaselineWorkerPool,
  setHostWorkerPool,
} from '../parallel/pool.js';
export {
  decayLinearAttention,
  gatedDeltaNet,
  kvmAttention,
  linearAttention,
  softmaxAttention,
  vqAttention,
} from './baselines.js';
export { denseProduct, explicitMatMul } from './matmul.js';
export { type OvqOpConfig, ovqAttention, resolveOvqOpConfig } from './ovq.js';
