// The streaming state of one OVQ head: the dictionary (centroid keys, value means, counts), the
// pending buffer of not-yet-absorbed tokens, and the counters that the growth schedule and the
// random spawn need. Float64 throughout: this is the reference's state, and the interchange
// format between the CPU, chunked and GPU implementations.
import { OvqInputError, requirePositiveInteger, resolveOvqConfig } from '../validate.js';
import type { OvqConfig, ResolvedOvqConfig } from './types.js';

export class OvqState {
  readonly keyDim: number;
  readonly valueDim: number;
  /** Validated config; `capacity` may be changed between calls with `setOvqCapacity`. */
  config: ResolvedOvqConfig;
  /** Active dictionary rows n. */
  size = 0;
  /** Tokens appended so far (absorbed + pending). */
  tokensSeen = 0;
  /** mulberry32 state for `spawn: 'random'`. */
  rngState: number;
  /** Pending (normalised) keys, [chunkSize, keyDim]; the first `pendingCount` rows are live. */
  readonly pendingKeys: Float64Array;
  /** Pending values, [chunkSize, valueDim]. */
  readonly pendingValues: Float64Array;
  pendingCount = 0;
  private rows = 0;
  private countsBuffer = new Float64Array(0);
  private keysBuffer = new Float64Array(0);
  private valuesBuffer = new Float64Array(0);

  constructor(keyDim: number, valueDim: number, config: ResolvedOvqConfig) {
    this.keyDim = keyDim;
    this.valueDim = valueDim;
    this.config = config;
    this.rngState = config.seed >>> 0;
    this.pendingKeys = new Float64Array(config.chunkSize * keyDim);
    this.pendingValues = new Float64Array(config.chunkSize * valueDim);
  }

  /** Tokens absorbed into the dictionary so far (τ before the current pending buffer). */
  get tokensAbsorbed(): number {
    return this.tokensSeen - this.pendingCount;
  }

  /** Counts c_i of the active rows (a live view, length `size`). */
  get counts(): Float64Array {
    return this.countsBuffer.subarray(0, this.size);
  }

  /** Centroid keys D_k, row-major [size, keyDim] (a live view). */
  get centroidKeys(): Float64Array {
    return this.keysBuffer.subarray(0, this.size * this.keyDim);
  }

  /** Value means D_v, row-major [size, valueDim] (a live view). */
  get centroidValues(): Float64Array {
    return this.valuesBuffer.subarray(0, this.size * this.valueDim);
  }

  /** Makes room for `rows` dictionary rows, keeping the active ones (amortised doubling). */
  reserve(rows: number): void {
    if (rows <= this.rows) return;
    const next = Math.max(rows, this.rows * 2, 16);
    const counts = new Float64Array(next);
    const keys = new Float64Array(next * this.keyDim);
    const values = new Float64Array(next * this.valueDim);
    counts.set(this.counts);
    keys.set(this.centroidKeys);
    values.set(this.centroidValues);
    this.countsBuffer = counts;
    this.keysBuffer = keys;
    this.valuesBuffer = values;
    this.rows = next;
  }

  /** Appends a dictionary row with count `count`. */
  pushRow(
    key: ArrayLike<number>,
    keyOffset: number,
    value: ArrayLike<number>,
    valueOffset: number,
    count: number,
  ): number {
    this.reserve(this.size + 1);
    const row = this.size;
    for (let d = 0; d < this.keyDim; d++)
      this.keysBuffer[row * this.keyDim + d] = key[keyOffset + d];
    for (let d = 0; d < this.valueDim; d++) {
      this.valuesBuffer[row * this.valueDim + d] = value[valueOffset + d];
    }
    this.countsBuffer[row] = count;
    this.size = row + 1;
    return row;
  }

  /** A deep copy (used to keep a state unchanged when an operation may fail half-way). */
  clone(): OvqState {
    const copy = new OvqState(this.keyDim, this.valueDim, { ...this.config });
    copy.reserve(this.size);
    copy.countsBuffer.set(this.counts);
    copy.keysBuffer.set(this.centroidKeys);
    copy.valuesBuffer.set(this.centroidValues);
    copy.size = this.size;
    copy.tokensSeen = this.tokensSeen;
    copy.rngState = this.rngState;
    copy.pendingKeys.set(this.pendingKeys);
    copy.pendingValues.set(this.pendingValues);
    copy.pendingCount = this.pendingCount;
    return copy;
  }

  /** Replaces this state's contents with `other`'s (same dims and chunk size). */
  assign(other: OvqState): void {
    this.config = { ...other.config };
    this.size = 0;
    this.reserve(other.size);
    this.countsBuffer.set(other.counts);
    this.keysBuffer.set(other.centroidKeys);
    this.valuesBuffer.set(other.centroidValues);
    this.size = other.size;
    this.tokensSeen = other.tokensSeen;
    this.rngState = other.rngState;
    this.pendingKeys.set(other.pendingKeys);
    this.pendingValues.set(other.pendingValues);
    this.pendingCount = other.pendingCount;
  }
}

/** An empty state for a stream of `dims.keyDim`-dim keys and `dims.valueDim`-dim values. */
export function createOvqState(
  dims: { keyDim: number; valueDim: number },
  config: OvqConfig,
): OvqState {
  if (typeof dims !== 'object' || dims === null) {
    throw new OvqInputError('dims', `got ${String(dims)}; expected {keyDim, valueDim}`);
  }
  const keyDim = requirePositiveInteger('dims.keyDim', dims.keyDim);
  const valueDim = requirePositiveInteger('dims.valueDim', dims.valueDim);
  return new OvqState(keyDim, valueDim, resolveOvqConfig(config));
}

/**
 * Changes the capacity N of a stream (a test-time memory budget). Lowering it below the current
 * size keeps the existing rows and stops spawning; every later token merges.
 */
export function setOvqCapacity(state: OvqState, capacity: number): void {
  state.config = { ...state.config, capacity: requirePositiveInteger('capacity', capacity) };
}
