// @ovq/core: OVQ-attention's math and its exact float64 reference.
export * from './chunked/index.js';
export * from './gmr/index.js';
export {
  type OvqGradients,
  type OvqReferenceBackwardOptions,
  ovqAttentionReferenceBackward,
} from './ovq/backward.js';
export {
  absorbPending,
  farthestPointSpawn,
  nearestRow,
  noveltySpawn,
  randomSpawn,
} from './ovq/dictionary.js';
export { growthTarget, growthValue, spawnCount } from './ovq/growth.js';
export { normalizeRow, readLogit, readState } from './ovq/read.js';
export { type OvqForwardOptions, ovqAppend, ovqAttentionReference } from './ovq/reference.js';
export { mulberry32Step } from './ovq/rng.js';
export {
  deserializeOvqState,
  OVQ_STATE_FORMAT_VERSION,
  OVQ_STATE_MAX_PENDING_VALUES,
  serializeOvqState,
} from './ovq/serialize.js';
export {
  createOvqState,
  OvqState,
  type OvqStateContents,
  setOvqBeta,
  setOvqCapacity,
} from './ovq/state.js';
export type * from './ovq/types.js';
export * from './parallel/index.js';
export * from './stream/index.js';
export type * from './tbptt/index.js';
export { OvqInputError, resolveOvqConfig, validateSeq } from './validate.js';
export * from './wasm/index.js';
