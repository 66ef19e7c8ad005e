// The chunked Float32 path of OVQ-attention: one-head and batched multi-head forward and backward,
// and the FLOP model its benchmark uses. Tested against the float64 reference in test/chunked*.
export {
  type ChunkedBackwardOptions,
  type ChunkedGradients,
  ovqAttentionBackward,
} from './backward.js';
export {
  type BatchedBackwardOptions,
  type BatchedForwardOptions,
  type BatchedGradients,
  type BatchedOvqConfig,
  type BatchedSeq,
  ovqAttentionBatched,
  ovqAttentionBatchedBackward,
} from './batched.js';
export { type ChunkedFlops, chunkedFlops } from './flops.js';
export {
  type ChunkedForwardOptions,
  type ChunkedForwardResult,
  ovqAttention,
} from './forward.js';

import { ovqAttentionBackward } from './backward.js';
import { ovqAttention } from './forward.js';

/** @deprecated Renamed: `ovqAttention` is now the fast Float32 path. Removed in the next minor. */
export const ovqAttentionChunked = ovqAttention;
/** @deprecated Renamed: use `ovqAttentionBackward`. Removed in the next minor. */
export const ovqAttentionChunkedBackward = ovqAttentionBackward;
