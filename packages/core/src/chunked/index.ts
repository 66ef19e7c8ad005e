// The chunked Float32 path of OVQ-attention: one-head and batched multi-head forward and backward,
// and the FLOP model its benchmark uses. Tested against the float64 reference in test/chunked*.
export {
  type ChunkedBackwardOptions,
  type ChunkedGradients,
  ovqAttentionChunkedBackward,
} from './backward.js';
export {
  type BatchedBackwardOptions,
  type BatchedForwardOptions,
  type BatchedSeq,
  ovqAttentionBatched,
  ovqAttentionBatchedBackward,
} from './batched.js';
export { type ChunkedFlops, chunkedFlops } from './flops.js';
export {
  type ChunkedForwardOptions,
  type ChunkedForwardResult,
  ovqAttentionChunked,
} from './forward.js';
