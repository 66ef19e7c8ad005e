export {
  DECAY_CHUNK,
  decayLinearAttentionChunked,
  decayLinearAttentionChunkedBackward,
} from './chunked.js';
export {
  decayLinearAppend,
  decayLinearAttention,
  decayLinearAttentionBackward,
} from './reference.js';
export {
  createDecayLinearState,
  type DecayLinearConfig,
  type DecayLinearState,
  type DecaySeq,
  decayLinearStateSize,
  deserializeDecayLinearState,
  type ResolvedDecayLinearConfig,
  serializeDecayLinearState,
} from './state.js';
