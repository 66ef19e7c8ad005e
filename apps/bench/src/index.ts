// @ovq/bench's programmatic API: the runner's pieces, for tests and for scripts that build on it.
export { type CompareRow, compareReports, formatComparison } from './compare.js';
export { quantile, summarize, type TimingStats, timeRepeats } from './measure/timing.js';
export {
  DEFAULT_RECALL_DEMO,
  formatRecallDemo,
  type RecallDemoOptions,
  type RecallDemoResult,
  recallAccuracy,
  recallSequence,
  runRecallDemo,
} from './recall-demo.js';
export { loadRegistry, selectImplementations } from './registry/index.js';
export type {
  CheckResult,
  Dims,
  Implementation,
  Mixer,
  Mode,
  Skipped,
  Workload,
} from './registry/types.js';
export { renderHtml, reportPlots, writeHtml } from './report/html.js';
export {
  type BenchReport,
  type Headline,
  REPORT_SCHEMA,
  readReport,
  writeJson,
} from './report/json.js';
export { type RunOptions, runSuite, type Suite } from './run.js';
export { runAblate } from './suites/ablate.js';
export { headlines, scalingExponent } from './suites/headlines.js';
export { runSyntheticRecall } from './suites/recall-synthetic.js';
export { runChecks, runSpeed, type SpeedOptions, type SpeedResult } from './suites/speed.js';
