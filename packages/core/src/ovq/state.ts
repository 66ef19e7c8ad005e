// The streaming state of one OVQ head: the dictionary (centroid keys, value means, counts), the
// pending buffer of not-yet-absorbed tokens, and the counters that the growth schedule and the
// random spawn need. Float64 throughout: this is the reference's state, and the interchange
// format between the CPU, chunked and GPU implementations.
//
// Users hold an `OvqState`: a read-only view (getters; arrays are copies; the config is frozen).
// The mutable storage behind it sits under the STORAGE symbol, which only this package imports
// (it is not exported from the index): every mutation is one of the package's operations.
import {
  OvqInputError,
  requireFiniteArray,
  requireNonNegativeInteger,
  requirePositiveFinite,
  requirePositiveInteger,
  resolveOvqConfig,
} from '../validate.js';
import type { OvqConfig, ResolvedOvqConfig } from './types.js';

/** Key of a state's mutable storage. Package-internal: never export it from the index. */
export const STORAGE: unique symbol = Symbol('OvqState.storage');

/** The mutable storage of an OvqState (package-internal). Array getters are live views. */
export class OvqStateStorage {
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
  private countsBuffer: Float64Array = new Float64Array(0);
  private keysBuffer: Float64Array = new Float64Array(0);
  private valuesBuffer: Float64Array = new Float64Array(0);

  constructor(keyDim: number, valueDim: number, config: ResolvedOvqConfig) {
    this.keyDim = keyDim;
    this.valueDim = valueDim;
    this.config = config;
    this.rngState = config.seed >>> 0;
    this.pendingKeys = new Float64Array(config.chunkSize * keyDim);
    this.pendingValues = new Float64Array(config.chunkSize * valueDim);
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

  /**
   * Takes `counts` [rows], `keys` [rows·keyDim] and `values` [rows·valueDim] (rows ≥ `size`) as
   * its row buffers without copying (the worker pool's final states, written by its workers);
   * the caller hands them over and keeps no other reference.
   */
  adopt(size: number, counts: Float64Array, keys: Float64Array, values: Float64Array): void {
    this.countsBuffer = counts;
    this.keysBuffer = keys;
    this.valuesBuffer = values;
    this.rows = counts.length;
    this.size = size;
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

  /** Replaces this storage's contents with `other`'s (same dims and chunk size). */
  assign(other: OvqStateStorage): void {
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

function frozenConfig(config: ResolvedOvqConfig): Readonly<ResolvedOvqConfig> {
  return Object.freeze({
    ...config,
    growth: Object.freeze({ ...config.growth }),
    update: Object.freeze({ ...config.update }),
  });
}

/**
 * The streaming state of one OVQ head, read-only. Made by `createOvqState`, the forward
 * functions, `OvqStream.state` and `deserializeOvqState`; changed only by the package's
 * operations (`ovqAppend`, `setOvqCapacity`, `setOvqBeta`, …). Array getters return copies.
 */
export class OvqState {
  /** @internal The mutable storage (package-internal). */
  readonly [STORAGE]: OvqStateStorage;
  private frozen: Readonly<ResolvedOvqConfig> | null = null;
  private frozenFrom: ResolvedOvqConfig | null = null;

  /** @internal An empty state; use `createOvqState`. */
  constructor(keyDim: number, valueDim: number, config: ResolvedOvqConfig) {
    this[STORAGE] = new OvqStateStorage(keyDim, valueDim, config);
  }

  get keyDim(): number {
    return this[STORAGE].keyDim;
  }

  get valueDim(): number {
    return this[STORAGE].valueDim;
  }

  /** The validated config (frozen). */
  get config(): Readonly<ResolvedOvqConfig> {
    const config = this[STORAGE].config;
    if (this.frozenFrom !== config) {
      this.frozen = frozenConfig(config);
      this.frozenFrom = config;
    }
    return this.frozen as Readonly<ResolvedOvqConfig>;
  }

  /** Active dictionary rows n. */
  get size(): number {
    return this[STORAGE].size;
  }

  /** Tokens appended so far (absorbed + pending). */
  get tokensSeen(): number {
    return this[STORAGE].tokensSeen;
  }

  /** Tokens absorbed into the dictionary so far (τ before the current pending buffer). */
  get tokensAbsorbed(): number {
    return this[STORAGE].tokensSeen - this[STORAGE].pendingCount;
  }

  /** Tokens in the pending buffer (< chunkSize). */
  get pendingCount(): number {
    return this[STORAGE].pendingCount;
  }

  /** mulberry32 state for `spawn: 'random'`. */
  get rngState(): number {
    return this[STORAGE].rngState;
  }

  /** Counts c_i of the rows, [size] (a copy). */
  get counts(): Float64Array {
    return this[STORAGE].counts.slice();
  }

  /** Centroid keys D_k, row-major [size, keyDim] (a copy). */
  get centroidKeys(): Float64Array {
    return this[STORAGE].centroidKeys.slice();
  }

  /** Value means D_v, row-major [size, valueDim] (a copy). */
  get centroidValues(): Float64Array {
    return this[STORAGE].centroidValues.slice();
  }

  /** Pending (normalised) keys, row-major [pendingCount, keyDim] (a copy). */
  get pendingKeys(): Float64Array {
    const s = this[STORAGE];
    return s.pendingKeys.slice(0, s.pendingCount * s.keyDim);
  }

  /** Pending values, row-major [pendingCount, valueDim] (a copy). */
  get pendingValues(): Float64Array {
    const s = this[STORAGE];
    return s.pendingValues.slice(0, s.pendingCount * s.valueDim);
  }

  /** An independent copy of this state. */
  clone(): OvqState {
    const s = this[STORAGE];
    const copy = new OvqState(s.keyDim, s.valueDim, { ...s.config });
    copy[STORAGE].assign(s);
    return copy;
  }
}

/** What a state holds, for building one from arrays (e.g. read back from a GPU). */
export type OvqStateContents = {
  /** Row counts, [size]: integers ≥ 1 summing to tokensSeen − pendingCount. */
  counts: ArrayLike<number>;
  /** [size, keyDim]. */
  centroidKeys: ArrayLike<number>;
  /** [size, valueDim]. */
  centroidValues: ArrayLike<number>;
  /** Pending keys as stored (normalised when config.normalize), [pendingCount, keyDim]. */
  pendingKeys?: ArrayLike<number>;
  /** [pendingCount, valueDim]. */
  pendingValues?: ArrayLike<number>;
  tokensSeen: number;
  /** mulberry32 state; default the config's seed. */
  rngState?: number;
};

function fill(
  state: OvqState,
  contents: OvqStateContents,
  keyDim: number,
  valueDim: number,
): OvqState {
  if (typeof contents !== 'object' || contents === null) {
    throw new OvqInputError(
      'contents',
      `got ${String(contents)}; expected {counts, centroidKeys, …}`,
    );
  }
  const s = state[STORAGE];
  const C = s.config.chunkSize;
  const counts = requireFiniteArray(
    'contents.counts',
    contents.counts,
    contents.counts?.length ?? -1,
    'size',
  );
  const size = counts.length;
  requireFiniteArray('contents.centroidKeys', contents.centroidKeys, size * keyDim, 'size*keyDim');
  requireFiniteArray(
    'contents.centroidValues',
    contents.centroidValues,
    size * valueDim,
    'size*valueDim',
  );
  const pk = contents.pendingKeys ?? [];
  const pendingCount = Math.floor((pk.length ?? 0) / keyDim);
  requireFiniteArray('contents.pendingKeys', pk, pendingCount * keyDim, 'pendingCount*keyDim');
  const pv = contents.pendingValues ?? [];
  requireFiniteArray(
    'contents.pendingValues',
    pv,
    pendingCount * valueDim,
    'pendingCount*valueDim',
  );
  if (pendingCount >= C) {
    throw new OvqInputError(
      'contents.pendingKeys',
      `holds ${pendingCount} tokens; expected < chunkSize ${C}`,
    );
  }
  const tokensSeen = requireNonNegativeInteger('contents.tokensSeen', contents.tokensSeen);
  let sum = 0;
  for (let i = 0; i < size; i++) {
    if (!(Number.isInteger(counts[i]) && counts[i] >= 1)) {
      throw new OvqInputError(
        'contents.counts',
        `counts[${i}] is ${counts[i]}; expected integers ≥ 1`,
      );
    }
    sum += counts[i];
  }
  if (sum !== tokensSeen - pendingCount) {
    throw new OvqInputError(
      'contents.counts',
      `sum to ${sum}; tokensSeen − pendingCount = ${tokensSeen - pendingCount} tokens were absorbed`,
    );
  }
  const rng = contents.rngState ?? s.config.seed >>> 0;
  if (!(Number.isInteger(rng) && rng >= 0 && rng <= 0xffffffff)) {
    throw new OvqInputError('contents.rngState', `got ${rng}; expected an integer in [0, 2^32)`);
  }
  for (let i = 0; i < size; i++) {
    s.pushRow(contents.centroidKeys, i * keyDim, contents.centroidValues, i * valueDim, counts[i]);
  }
  for (let i = 0; i < pendingCount * keyDim; i++) s.pendingKeys[i] = pk[i];
  for (let i = 0; i < pendingCount * valueDim; i++) s.pendingValues[i] = pv[i];
  s.pendingCount = pendingCount;
  s.tokensSeen = tokensSeen;
  s.rngState = rng;
  return state;
}

/**
 * A state for a stream of `dims.keyDim`-dim keys and `dims.valueDim`-dim values: empty, or with
 * `contents` (validated and copied), e.g. a dictionary read back from another implementation.
 */
export function createOvqState(
  dims: { keyDim: number; valueDim: number },
  config: OvqConfig,
  contents?: OvqStateContents,
): OvqState {
  if (typeof dims !== 'object' || dims === null) {
    throw new OvqInputError('dims', `got ${String(dims)}; expected {keyDim, valueDim}`);
  }
  const keyDim = requirePositiveInteger('dims.keyDim', dims.keyDim);
  const valueDim = requirePositiveInteger('dims.valueDim', dims.valueDim);
  const state = new OvqState(keyDim, valueDim, resolveOvqConfig(config));
  return contents === undefined ? state : fill(state, contents, keyDim, valueDim);
}

function requireState(state: unknown): OvqStateStorage {
  if (!(state instanceof OvqState)) {
    throw new OvqInputError('state', 'expected an OvqState');
  }
  return state[STORAGE];
}

/**
 * Changes the capacity N of a stream (a test-time memory budget). Lowering it below the current
 * size keeps the existing rows and stops spawning; every later token merges.
 */
export function setOvqCapacity(state: OvqState, capacity: number): void {
  const s = requireState(state);
  s.config = { ...s.config, capacity: requirePositiveInteger('capacity', capacity) };
}

/**
 * Changes the inverse temperature β of a stream (e.g. a trained parameter between steps). The
 * dictionary does not depend on β, only the reads do.
 */
export function setOvqBeta(state: OvqState, beta: number): void {
  const s = requireState(state);
  s.config = { ...s.config, beta: requirePositiveFinite('beta', beta) };
}
