export { kvmAttentionBlocked, kvmAttentionBlockedBackward } from './blocked.js';
export { kvmAppend, kvmAttention, kvmAttentionBackward } from './reference.js';
export type { KvmGradients } from './run.js';
export {
  budgetRows,
  createKvmState,
  deserializeKvmState,
  type KvmBudget,
  type KvmConfig,
  type KvmState,
  kvmStateSize,
  type ResolvedKvmConfig,
  serializeKvmState,
} from './state.js';
