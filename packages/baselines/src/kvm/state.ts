// Key-Value Means (Goldstein & Cheah 2026) as this package defines it (README "KVM"): config,
// state (sink tokens, compressed rows, the raw window), serialisation and state size.
import { type Dims, parseStateEnvelope, readNumbers, serializeFields } from '../common.js';
import { checkInteger, checkPositive, inputError } from '../validate.js';

/** How many compressed rows may exist after τ tokens left the window. */
export type KvmBudget =
  | { kind: 'fixed'; rows: number }
  | { kind: 'sqrt'; scale: number }
  | { kind: 'saturating'; rows: number };

export type KvmConfig = {
  /** Window W in tokens (a multiple of blockSize): a query reads the last W/B blocks raw, its own included. */
  window: number;
  /** Block size B: tokens leave the window a block at a time; default = window. */
  blockSize?: number;
  /** Logit scale β (queries and keys are unit vectors). */
  beta: number;
  /** Row budget schedule R(τ). */
  budget: KvmBudget;
  /** The first `sinks` tokens are kept exactly forever; default 0. */
  sinks?: number;
};

export type ResolvedKvmConfig = {
  window: number;
  blockSize: number;
  beta: number;
  budget: KvmBudget;
  sinks: number;
};

export type KvmState = {
  mixer: 'kvm';
  keyDim: number;
  valueDim: number;
  config: ResolvedKvmConfig;
  position: number;
  /** Tokens compressed into rows so far (τ). */
  compressed: number;
  sinkCount: number;
  sinkKeys: Float64Array;
  sinkValues: Float64Array;
  /** Compressed rows: unit key K_i, unit value direction U_i, value radius ρ_i (value = ρ_i U_i). */
  rowCount: number;
  rowKeys: Float64Array;
  rowValues: Float64Array;
  rowRadii: Float64Array;
  /** Raw window: the last `windowCount` non-sink tokens not yet compressed (unit keys, values). */
  windowCount: number;
  windowKeys: Float64Array;
  windowValues: Float64Array;
};

export function resolveKvmConfig(config: KvmConfig | undefined): ResolvedKvmConfig {
  if (config === undefined)
    inputError('config is undefined; expected { window, beta, budget, blockSize?, sinks? }');
  const window = checkInteger('config.window', config.window, 1);
  const blockSize =
    config.blockSize === undefined ? window : checkInteger('config.blockSize', config.blockSize, 1);
  if (window % blockSize !== 0) {
    inputError(
      `config.window is ${window}; expected a multiple of config.blockSize = ${blockSize}`,
    );
  }
  const b = config.budget as KvmBudget | undefined;
  let budget: KvmBudget;
  if (b?.kind === 'fixed')
    budget = { kind: 'fixed', rows: checkInteger('config.budget.rows', b.rows, 1) };
  else if (b?.kind === 'saturating')
    budget = { kind: 'saturating', rows: checkInteger('config.budget.rows', b.rows, 1) };
  else if (b?.kind === 'sqrt')
    budget = { kind: 'sqrt', scale: checkPositive('config.budget.scale', b.scale) };
  else
    inputError(
      `config.budget is ${JSON.stringify(b)}; expected {kind: 'fixed'|'saturating', rows} or {kind: 'sqrt', scale}`,
    );
  return {
    window,
    blockSize,
    beta: checkPositive('config.beta', config.beta),
    budget,
    sinks: config.sinks === undefined ? 0 : checkInteger('config.sinks', config.sinks, 0),
  };
}

/** R(τ) = min(τ, max(1, ⌊G(τ)⌋)): fixed G = N, sqrt G = a√τ (uncapped), saturating G = Nτ/(N+τ). */
export function budgetRows(budget: KvmBudget, tau: number): number {
  const g =
    budget.kind === 'fixed'
      ? budget.rows
      : budget.kind === 'sqrt'
        ? budget.scale * Math.sqrt(tau)
        : (budget.rows * tau) / (budget.rows + tau);
  return Math.min(tau, Math.max(1, Math.floor(g)));
}

export function createKvmState(dims: Dims, config: KvmConfig): KvmState {
  const keyDim = checkInteger('dims.keyDim', dims.keyDim, 1);
  const valueDim = checkInteger('dims.valueDim', dims.valueDim, 1);
  const e = new Float64Array(0);
  return {
    mixer: 'kvm',
    keyDim,
    valueDim,
    config: resolveKvmConfig(config),
    position: 0,
    compressed: 0,
    sinkCount: 0,
    sinkKeys: e,
    sinkValues: e,
    rowCount: 0,
    rowKeys: e,
    rowValues: e,
    rowRadii: e,
    windowCount: 0,
    windowKeys: e,
    windowValues: e,
  };
}

/** Where the stream stands after T tokens: sinks, window tokens, compressed τ and rows (no values needed). */
export function kvmCounts(
  config: ResolvedKvmConfig,
  T: number,
): { sinks: number; window: number; compressed: number; rows: number } {
  const B = config.blockSize;
  const blocks = config.window / B;
  const sinks = Math.min(T, config.sinks);
  let rows = 0;
  let compressed = 0;
  // Block X leaves after the last token of block X + blocks − 1.
  const leftBlocks = Math.max(0, Math.floor(T / B) - blocks + 1);
  for (let x = 0; x < leftBlocks; x++) {
    const m = Math.max(0, (x + 1) * B - Math.max(x * B, config.sinks));
    if (m === 0) continue;
    compressed += m;
    rows += Math.min(m, Math.max(0, budgetRows(config.budget, compressed) - rows));
  }
  return { sinks, window: T - sinks - compressed, compressed, rows };
}

/** Rows·(dk + dv + 1) + (sinks + window tokens)·(dk + dv) after T tokens. */
export function kvmStateSize(dims: Dims, config: KvmConfig, T: number): number {
  const n = kvmCounts(resolveKvmConfig(config), T);
  return (
    n.rows * (dims.keyDim + dims.valueDim + 1) +
    (n.sinks + n.window) * (dims.keyDim + dims.valueDim)
  );
}

export function serializeKvmState(state: KvmState): string {
  const { mixer: _m, ...fields } = state;
  return serializeFields('kvm', fields);
}

export function deserializeKvmState(text: string): KvmState {
  const b = parseStateEnvelope(text, 'kvm');
  const keyDim = checkInteger('state.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('state.valueDim', b.valueDim, 1);
  const config = resolveKvmConfig(b.config as KvmConfig);
  const position = checkInteger('state.position', b.position, 0);
  const expected = kvmCounts(config, position);
  const sinkCount = checkInteger('state.sinkCount', b.sinkCount, 0);
  const windowCount = checkInteger('state.windowCount', b.windowCount, 0);
  const compressed = checkInteger('state.compressed', b.compressed, 0);
  const rowCount = checkInteger('state.rowCount', b.rowCount, 0);
  if (
    sinkCount !== expected.sinks ||
    windowCount !== expected.window ||
    compressed !== expected.compressed ||
    rowCount !== expected.rows
  ) {
    inputError(
      `serialized state has sinks/window/compressed/rows ${sinkCount}/${windowCount}/${compressed}/${rowCount}; expected ${expected.sinks}/${expected.window}/${expected.compressed}/${expected.rows} at position ${position}`,
    );
  }
  return {
    mixer: 'kvm',
    keyDim,
    valueDim,
    config,
    position,
    compressed,
    sinkCount,
    sinkKeys: readNumbers(b, 'sinkKeys', sinkCount * keyDim),
    sinkValues: readNumbers(b, 'sinkValues', sinkCount * valueDim),
    rowCount,
    rowKeys: readNumbers(b, 'rowKeys', rowCount * keyDim),
    rowValues: readNumbers(b, 'rowValues', rowCount * valueDim),
    rowRadii: readNumbers(b, 'rowRadii', rowCount),
    windowCount,
    windowKeys: readNumbers(b, 'windowKeys', windowCount * keyDim),
    windowValues: readNumbers(b, 'windowValues', windowCount * valueDim),
  };
}
