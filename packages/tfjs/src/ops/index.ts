// @ovq/tfjs/ops: the ops alone, for users without @tensorflow/tfjs-layers (an optional peer).
export { OvqTfjsInputError } from '../errors.js';
export { hostWorkerPool, setHostWorkerPool } from '../parallel/pool.js';
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
