export {
  DEFAULT_RECALL_DEMO,
  formatRecallDemo,
  type RecallDemoOptions,
  type RecallDemoResult,
  recallSequence,
  runRecallDemo,
} from './recall-demo.js';
