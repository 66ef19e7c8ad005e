export { maskedMse, tokenAccuracy } from './metrics.js';
export {
  type MqarMixtureOptions,
  type MqarOptions,
  type MqarSlice,
  mqarMixtureTask,
  mqarTask,
} from './mqar.js';
export { type NiahOptions, type NiahVocabulary, niahTask, niahVocabulary } from './niah.js';
export { itemSeed, Random } from './random.js';
export { basicRecallTask, positionalRecallTask } from './recall.js';
export { linearRegressionTask, type RegressionOptions } from './regression.js';
export {
  byteLmTask,
  loadBrownCorpus,
  loadTextDocuments,
  splitDocuments,
  stripBrownTags,
  type TextDocument,
} from './text.js';
export { type Batch, IGNORE, type Task, type TokenBatch, type VectorBatch } from './types.js';
