// Key-Value Means (Goldstein & Cheah 2026) as this package defines it (README "KVM"): config,
// state (sink tokens, compressed rows, the raw window), serialisation and state size.
import { type Dims, parseStateEnvelope, readNumbers, serializeFields } from '../common.js';
import {
  checkDims,
  checkInteger,
  checkKeys,
  checkObject,
  checkPositive,
  checkResolvedConfig,
  checkState,
  checkTokens,
  deserializing,
  fail,
  type MixerSpec,
  readConfig,
} from '../validate.js';

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

const BUDGET_KINDS = "{kind: 'fixed'|'saturating', rows} or {kind: 'sqrt', scale}";

/** Validates a budget `{kind, rows}` / `{kind: 'sqrt', scale}` (unknown keys refused). */
function resolveBudget(budget: unknown, argument: string): KvmBudget {
  const b = checkObject(argument, budget, BUDGET_KINDS);
  if (b.kind === 'fixed' || b.kind === 'saturating') {
    checkKeys(argument, b, ['kind', 'rows']);
    return { kind: b.kind, rows: checkInteger(`${argument}.rows`, b.rows, 1) };
  }
  if (b.kind === 'sqrt') {
    checkKeys(argument, b, ['kind', 'scale']);
    return { kind: 'sqrt', scale: checkPositive(`${argument}.scale`, b.scale) };
  }
  return fail(`${argument}.kind`, b.kind, "'fixed', 'saturating' or 'sqrt'");
}

/** Validates a KvmConfig (required: window, beta, budget) and fills in the defaults. */
export function resolveKvmConfig(
  config: KvmConfig | undefined,
  argument = 'config',
): ResolvedKvmConfig {
  const c = readConfig(argument, config, ['window', 'blockSize', 'beta', 'budget', 'sinks'], true);
  const window = checkInteger(`${argument}.window`, c.window, 1);
  const blockSize =
    c.blockSize === undefined ? window : checkInteger(`${argument}.blockSize`, c.blockSize, 1);
  if (window % blockSize !== 0) {
    fail(`${argument}.window`, window, `a multiple of ${argument}.blockSize = ${blockSize}`);
  }
  const budget = resolveBudget(c.budget, `${argument}.budget`);
  return {
    window,
    blockSize,
    beta: checkPositive(`${argument}.beta`, c.beta),
    budget,
    sinks: c.sinks === undefined ? 0 : checkInteger(`${argument}.sinks`, c.sinks, 0),
  };
}

/** R(τ) = min(τ, max(1, ⌊G(τ)⌋)): fixed G = N, sqrt G = a√τ (uncapped), saturating G = Nτ/(N+τ). */
export function budgetRows(budget: KvmBudget, tau: number): number {
  const b = resolveBudget(budget, 'budget');
  const t = checkInteger('tau', tau, 0);
  return rowsFor(b, t);
}

/** budgetRows without the checks (config already resolved). */
export function rowsFor(budget: KvmBudget, tau: number): number {
  const g =
    budget.kind === 'fixed'
      ? budget.rows
      : budget.kind === 'sqrt'
        ? budget.scale * Math.sqrt(tau)
        : (budget.rows * tau) / (budget.rows + tau);
  return Math.min(tau, Math.max(1, Math.floor(g)));
}

function emptyKvmState(dims: Dims, config: ResolvedKvmConfig): KvmState {
  const e = new Float64Array(0);
  return {
    mixer: 'kvm',
    keyDim: dims.keyDim,
    valueDim: dims.valueDim,
    config,
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

export function createKvmState(dims: Dims, config: KvmConfig): KvmState {
  return emptyKvmState(checkDims(dims), resolveKvmConfig(config));
}

export function checkKvmState(state: unknown, argument: string): Dims {
  const dims = checkKvmStateShape(state, argument);
  const s = state as KvmState;
  const c = resolveKvmConfig(s.config, `${argument}.config`);
  checkResolvedConfig(`${argument}.config`, s.config, c);
  const n = kvmCounts(c, s.position);
  const held = `${s.sinkCount}/${s.windowCount}/${s.compressed}/${s.rowCount}`;
  const want = `${n.sinks}/${n.window}/${n.compressed}/${n.rows}`;
  if (held !== want) {
    fail(
      argument,
      held,
      `sinks/window/compressed/rows ${want} at position ${s.position}`,
      `holds sinks/window/compressed/rows ${held}`,
    );
  }
  return dims;
}

function checkKvmStateShape(state: unknown, argument: string): Dims {
  return checkState(
    state,
    'kvm',
    argument,
    ['compressed', 'sinkCount', 'rowCount', 'windowCount'],
    (n) => ({
      sinkKeys: n.sinkCount * n.keyDim,
      sinkValues: n.sinkCount * n.valueDim,
      rowKeys: n.rowCount * n.keyDim,
      rowValues: n.rowCount * n.valueDim,
      rowRadii: n.rowCount,
      windowKeys: n.windowCount * n.keyDim,
      windowValues: n.windowCount * n.valueDim,
    }),
  );
}

export const kvmSpec: MixerSpec<KvmState, ResolvedKvmConfig> = {
  mixer: 'kvm',
  checkState: checkKvmState,
  resolve: (config) => resolveKvmConfig(config as KvmConfig),
  empty: emptyKvmState,
};

/** Where the stream stands after T tokens: sinks, window tokens, compressed τ and rows (no values needed). */
export function kvmCounts(
  config: ResolvedKvmConfig,
  T: number,
): { sinks: number; window: number; compressed: number; rows: number } {
  const B = config.blockSize;
  const blocks = config.window / B;
  const sinks = Math.min(T, config.sinks);
  // Block X leaves after the last token of block X + blocks − 1; its non-sink tokens are compressed.
  const leftBlocks = Math.max(0, Math.floor(T / B) - blocks + 1);
  const compressed = Math.max(0, leftBlocks * B - config.sinks);
  // Per block the engine adds min(m, R(τ) − rows) rows. R is non-decreasing and grows by at most m
  // when τ grows by m (min(τ, ·) caps it where G rises faster), so rows = R(τ) after every block:
  // O(1) instead of a loop over blocks (stateSize with a huge T stays instant).
  return {
    sinks,
    window: T - sinks - compressed,
    compressed,
    rows: rowsFor(config.budget, compressed),
  };
}

/** Rows·(dk + dv + 1) + (sinks + window tokens)·(dk + dv) after T tokens. */
export function kvmStateSize(dims: Dims, config: KvmConfig, T: number): number {
  const d = checkDims(dims);
  const n = kvmCounts(resolveKvmConfig(config), checkTokens(T));
  return n.rows * (d.keyDim + d.valueDim + 1) + (n.sinks + n.window) * (d.keyDim + d.valueDim);
}

export function serializeKvmState(state: KvmState): string {
  checkKvmState(state, 'state');
  const { mixer: _m, ...fields } = state;
  return serializeFields('kvm', fields);
}

export function deserializeKvmState(text: string): KvmState {
  return deserializing(() => readKvmState(text));
}

function readKvmState(text: string): KvmState {
  const b = parseStateEnvelope(text, 'kvm');
  const keyDim = checkInteger('text.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('text.valueDim', b.valueDim, 1);
  const config = resolveKvmConfig(b.config as KvmConfig, 'text.config');
  const position = checkInteger('text.position', b.position, 0);
  const expected = kvmCounts(config, position);
  const sinkCount = checkInteger('text.sinkCount', b.sinkCount, 0);
  const windowCount = checkInteger('text.windowCount', b.windowCount, 0);
  const compressed = checkInteger('text.compressed', b.compressed, 0);
  const rowCount = checkInteger('text.rowCount', b.rowCount, 0);
  if (
    sinkCount !== expected.sinks ||
    windowCount !== expected.window ||
    compressed !== expected.compressed ||
    rowCount !== expected.rows
  ) {
    fail(
      'text',
      `${sinkCount}/${windowCount}/${compressed}/${rowCount}`,
      `${expected.sinks}/${expected.window}/${expected.compressed}/${expected.rows} at position ${position}`,
      `has sinks/window/compressed/rows ${sinkCount}/${windowCount}/${compressed}/${rowCount}`,
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
