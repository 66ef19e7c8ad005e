export {
  finishQKGradients,
  softmaxAppend,
  softmaxAttention,
  softmaxAttentionBackward,
} from './reference.js';
export {
  createSoftmaxState,
  deserializeSoftmaxState,
  type ResolvedSoftmaxConfig,
  resolveSoftmaxConfig,
  type SoftmaxConfig,
  type SoftmaxState,
  serializeSoftmaxState,
  softmaxStateSize,
} from './state.js';
export { SOFTMAX_TILE, softmaxAttentionTiled, softmaxAttentionTiledBackward } from './tiled.js';
