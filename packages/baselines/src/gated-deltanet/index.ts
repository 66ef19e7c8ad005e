export { GDN_CHUNK, gatedDeltaNetChunked, gatedDeltaNetChunkedBackward } from './chunked.js';
export {
  type GatedDeltaNetGradients,
  gatedDeltaNet,
  gatedDeltaNetAppend,
  gatedDeltaNetBackward,
} from './reference.js';
export {
  createGatedDeltaNetState,
  deserializeGatedDeltaNetState,
  type GatedDeltaNetConfig,
  type GatedDeltaNetState,
  type GdnSeq,
  gatedDeltaNetStateSize,
  type ResolvedGatedDeltaNetConfig,
  serializeGatedDeltaNetState,
} from './state.js';
