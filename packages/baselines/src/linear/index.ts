export { LINEAR_CHUNK, linearAttentionChunked, linearAttentionChunkedBackward } from './chunked.js';
export { linearAppend, linearAttention, linearAttentionBackward } from './reference.js';
export {
  createLinearState,
  deserializeLinearState,
  type LinearConfig,
  type LinearState,
  linearStateSize,
  type ResolvedLinearConfig,
  serializeLinearState,
} from './state.js';
