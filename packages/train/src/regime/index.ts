// The regime experiment: matched state budgets, the plan of cells, the runner and its results.
export {
  type BudgetMatch,
  BudgetTooSmallError,
  budgetKnob,
  type LayerShape,
  layerStateCeiling,
  matchBudget,
} from './budget.js';
export {
  betaScaleVariant,
  budgetOptions,
  capacityVariant,
  isTestTimeCell,
  type OvqVariant,
  planCells,
  type RegimeAblations,
  type RegimeCell,
  type RegimeConfig,
  type RegimeTask,
  rowMixers,
  shardCells,
  unfitBudgets,
  validateRegimeConfig,
} from './plan.js';
export {
  binPositions,
  type CellKey,
  cellDone,
  meanStd,
  mergeResults,
  positionBin,
  RESULTS_SCHEMA,
  type ResultRow,
  type ResultsFile,
  validateResults,
} from './results.js';
export {
  cellKey,
  cellProbes,
  cellTrainConfig,
  lossRatioRows,
  POSITION_BINS,
  pendingCells,
  pickedLr,
  type RunCellOptions,
  type RunRegimeOptions,
  runCell,
  runRegime,
  trainingSpec,
  withOvqBetaScale,
  withOvqCapacity,
} from './run.js';
export { resultTables } from './tables.js';
