export { vqAttentionBlocked, vqAttentionBlockedBackward } from './blocked.js';
export {
  VQ_EMA_DEFAULTS,
  type VqCodebookStats,
  type VqEmaOptions,
  vqCodebookFromStats,
  vqCommitmentLoss,
  vqEmaUpdate,
  vqRestartDeadCodes,
} from './codebook.js';
export { type VqGradients, vqAppend, vqAttention, vqAttentionBackward } from './reference.js';
export {
  createVqState,
  deserializeVqState,
  type ResolvedVqConfig,
  serializeVqState,
  type VqConfig,
  type VqSeq,
  type VqState,
  vqStateSize,
} from './state.js';
