// The working state of one head on the chunked path: the dictionary in the layouts the kernels
// want, the pending chunk, and the absorb step (decide, apply, undo). Allocated once per call and
// reused across heads (and, in pool workers, across calls), so nothing here grows with the
// sequence length.

import { randomSpawn } from '../ovq/dictionary.js';
import { noveltyRoom, spawnCount } from '../ovq/growth.js';
import { OvqState, STORAGE } from '../ovq/state.js';
import type { ResolvedOvqConfig } from '../ovq/types.js';
import { wasmKernels } from '../wasm/simd.js';
import { matmulABt, screenScratch, spawnRows } from './kernels.js';
import { nearestRowScreenWasm } from './wasm-dict.js';

let nextResidentId = 1;

/** A stream's contents as flat float64 rows: row means [size, dim], counts, pending tokens. */
export type StateRows = {
  size: number;
  pendingCount: number;
  tokensSeen: number;
  rngState: number;
  counts: ArrayLike<number>;
  keys: ArrayLike<number>;
  values: ArrayLike<number>;
  pendingKeys: ArrayLike<number>;
  pendingValues: ArrayLike<number>;
};

/**
 * The dictionary and pending buffer of one head.
 * - `keys` [rowsCap, keyDim] and `valuesT` [valueDim, rowsCap] (transposed) are what the forward
 *   read multiplies; `values` and `keysT` serve the backward products.
 * - `keyAcc`/`valueAcc` are float64: for `update: 'mean'` they hold the running SUMS of the rows'
 *   members (so an absorb is undone by a subtraction, and rows are their exact means); for `ema`
 *   they hold the rows themselves.
 */
export class HeadWorkspace {
  readonly keyDim: number;
  readonly valueDim: number;
  readonly chunkSize: number;
  readonly rowsCap: number;
  config: ResolvedOvqConfig;
  size = 0;
  tokensSeen = 0;
  rngState = 0;
  pendingCount = 0;
  readonly keys: Float32Array;
  readonly keysT: Float32Array;
  readonly values: Float32Array;
  readonly valuesT: Float32Array;
  readonly keyAcc: Float64Array;
  readonly valueAcc: Float64Array;
  readonly counts: Float64Array;
  /** Per-row logit bias: ln c_i, minus β·½‖D_k[i]‖² for the Gaussian read. */
  readonly rowBias: Float32Array;
  /** ½‖D_k[i]‖², used by the Gaussian read and by the nearest-row search. */
  readonly halfNorms: Float32Array;
  readonly pendKeys: Float32Array;
  readonly pendKeysT: Float32Array;
  readonly pendValues: Float32Array;
  readonly pendValuesT: Float32Array;
  readonly pendHalfNorms: Float32Array;
  // Absorb scratch: scores [C, rowsCap], nearest distances and rows, touched-row marks.
  private readonly scores: Float32Array;
  private readonly bestDist: Float64Array;
  private readonly bestRow: Int32Array;
  private readonly picked: Uint8Array;
  private readonly touched: Int32Array;
  private readonly mark: Uint8Array;
  private readonly members: Float64Array;
  private emaSums: Float64Array | null = null;
  /** This workspace's owner id for the WASM-resident dictionary (wasm-dict.ts). */
  readonly residentId = nextResidentId++;
  /** Rows re-derived since the resident copy was last synced (refreshRow marks them). */
  readonly dirtyRows: Int32Array;
  readonly dirtyMark: Uint8Array;
  dirtyCount = 0;
  /** Every row < size must be uploaded (after reset or load). */
  dirtyAll = true;

  constructor(keyDim: number, valueDim: number, config: ResolvedOvqConfig, rowsCap: number) {
    const C = config.chunkSize;
    this.keyDim = keyDim;
    this.valueDim = valueDim;
    this.chunkSize = C;
    this.rowsCap = rowsCap;
    this.config = config;
    this.keys = new Float32Array(rowsCap * keyDim);
    this.keysT = new Float32Array(keyDim * rowsCap);
    this.values = new Float32Array(rowsCap * valueDim);
    this.valuesT = new Float32Array(valueDim * rowsCap);
    this.keyAcc = new Float64Array(rowsCap * keyDim);
    this.valueAcc = new Float64Array(rowsCap * valueDim);
    this.counts = new Float64Array(rowsCap);
    this.rowBias = new Float32Array(rowsCap);
    this.halfNorms = new Float32Array(rowsCap);
    this.pendKeys = new Float32Array(C * keyDim);
    this.pendKeysT = new Float32Array(keyDim * C);
    this.pendValues = new Float32Array(C * valueDim);
    this.pendValuesT = new Float32Array(valueDim * C);
    this.pendHalfNorms = new Float32Array(C);
    this.scores = new Float32Array(C * rowsCap);
    this.bestDist = new Float64Array(C);
    this.bestRow = new Int32Array(C);
    this.picked = new Uint8Array(C);
    this.touched = new Int32Array(C);
    this.mark = new Uint8Array(rowsCap);
    this.members = new Float64Array(rowsCap);
    this.dirtyRows = new Int32Array(rowsCap);
    this.dirtyMark = new Uint8Array(rowsCap);
  }

  /** Bytes held by this workspace (the benchmark's explicit memory account). */
  get bytes(): number {
    let total = 0;
    for (const value of Object.values(this)) {
      if (ArrayBuffer.isView(value)) total += value.byteLength;
    }
    return total;
  }

  /** Resets to an empty stream (reusing the buffers for another head). */
  reset(config: ResolvedOvqConfig): void {
    this.config = config;
    this.size = 0;
    this.tokensSeen = 0;
    this.pendingCount = 0;
    this.rngState = config.seed >>> 0;
    this.dirtyAll = true;
  }

  /** Loads a float64 OvqState (rows, counts, pending buffer, counters). */
  load(view: OvqState, config: ResolvedOvqConfig): void {
    const state = view[STORAGE];
    this.loadRows(
      {
        size: state.size,
        pendingCount: state.pendingCount,
        tokensSeen: state.tokensSeen,
        rngState: state.rngState,
        counts: state.counts,
        keys: state.centroidKeys,
        values: state.centroidValues,
        pendingKeys: state.pendingKeys,
        pendingValues: state.pendingValues,
      },
      config,
    );
  }

  /** Loads a state given as flat float64 rows (an OvqState's storage or a pool's shared copy). */
  loadRows(state: StateRows, config: ResolvedOvqConfig): void {
    this.reset(config);
    const { keyDim: dk, valueDim: dv } = this;
    const mean = config.update.kind === 'mean';
    const counts = state.counts;
    const keys = state.keys;
    const values = state.values;
    for (let i = 0; i < state.size; i++) {
      const c = counts[i];
      this.counts[i] = c;
      // Sums are rebuilt from means; exact up to one float64 rounding per element.
      const scale = mean ? c : 1;
      for (let d = 0; d < dk; d++) this.keyAcc[i * dk + d] = keys[i * dk + d] * scale;
      for (let d = 0; d < dv; d++) this.valueAcc[i * dv + d] = values[i * dv + d] * scale;
    }
    this.size = state.size;
    for (let i = 0; i < state.size; i++) this.refreshRow(i);
    this.pendingCount = state.pendingCount;
    for (let j = 0; j < state.pendingCount; j++) {
      for (let d = 0; d < dk; d++) this.pendKeys[j * dk + d] = state.pendingKeys[j * dk + d];
      for (let d = 0; d < dv; d++) this.pendValues[j * dv + d] = state.pendingValues[j * dv + d];
      this.refreshPending(j);
    }
    this.tokensSeen = state.tokensSeen;
    this.rngState = state.rngState;
  }

  /** Row i as float64 means (the exact means of its sums) into key[kOff …] and value[vOff …]. */
  private rowMeans(i: number, key: Float64Array, kOff: number, value: Float64Array, vOff: number) {
    const { keyDim: dk, valueDim: dv } = this;
    // Divide (not × 1/c): an exact sum of c equal keys gives back exactly that key.
    const c = this.config.update.kind === 'mean' ? this.counts[i] : 1;
    for (let d = 0; d < dk; d++) key[kOff + d] = this.keyAcc[i * dk + d] / c;
    for (let d = 0; d < dv; d++) value[vOff + d] = this.valueAcc[i * dv + d] / c;
  }

  /** The current stream as a float64 OvqState (rows are the exact means of their sums). */
  toState(): OvqState {
    const { keyDim: dk, valueDim: dv } = this;
    const view = new OvqState(dk, dv, { ...this.config });
    const state = view[STORAGE];
    state.reserve(this.size);
    const key = new Float64Array(dk);
    const value = new Float64Array(dv);
    for (let i = 0; i < this.size; i++) {
      this.rowMeans(i, key, 0, value, 0);
      state.pushRow(key, 0, value, 0, this.counts[i]);
    }
    for (let j = 0; j < this.pendingCount * dk; j++) state.pendingKeys[j] = this.pendKeys[j];
    for (let j = 0; j < this.pendingCount * dv; j++) state.pendingValues[j] = this.pendValues[j];
    state.pendingCount = this.pendingCount;
    state.tokensSeen = this.tokensSeen;
    state.rngState = this.rngState;
    return view;
  }

  /**
   * Writes the current stream as `toState()` would hold it (the same float64 values) into flat
   * arrays: counts [size], keys [size, keyDim], values [size, valueDim], and the pending buffer
   * [pendingCount, keyDim | valueDim]. Returns size, pendingCount and the counters.
   */
  exportRows(
    counts: Float64Array,
    keys: Float64Array,
    values: Float64Array,
    pendingKeys: Float64Array,
    pendingValues: Float64Array,
  ): { size: number; pendingCount: number; tokensSeen: number; rngState: number } {
    const { keyDim: dk, valueDim: dv, size, pendingCount } = this;
    for (let i = 0; i < size; i++) {
      counts[i] = this.counts[i];
      this.rowMeans(i, keys, i * dk, values, i * dv);
    }
    for (let j = 0; j < pendingCount * dk; j++) pendingKeys[j] = this.pendKeys[j];
    for (let j = 0; j < pendingCount * dv; j++) pendingValues[j] = this.pendValues[j];
    return { size, pendingCount, tokensSeen: this.tokensSeen, rngState: this.rngState };
  }

  /** Re-derives the float32 copies, ½‖μ‖² and the logit bias of row i from its float64 data. */
  refreshRow(i: number): void {
    const { keyDim: dk, valueDim: dv, rowsCap } = this;
    const c = this.counts[i];
    const div = this.config.update.kind === 'mean' ? c : 1;
    let sq = 0;
    for (let d = 0; d < dk; d++) {
      const x = Math.fround(this.keyAcc[i * dk + d] / div);
      this.keys[i * dk + d] = x;
      this.keysT[d * rowsCap + i] = x;
      sq += x * x;
    }
    for (let d = 0; d < dv; d++) {
      const x = this.valueAcc[i * dv + d] / div;
      this.values[i * dv + d] = x;
      this.valuesT[d * rowsCap + i] = x;
    }
    this.halfNorms[i] = 0.5 * sq;
    if (!this.dirtyAll && !this.dirtyMark[i]) {
      this.dirtyMark[i] = 1;
      this.dirtyRows[this.dirtyCount++] = i;
    }
    const gaussian = this.config.read === 'gaussian';
    this.rowBias[i] = Math.log(c) - (gaussian ? this.config.beta * 0.5 * sq : 0);
  }

  /** Re-derives the transposed copies and ½‖k̂‖² of pending slot j. */
  refreshPending(j: number): void {
    const { keyDim: dk, valueDim: dv, chunkSize: C } = this;
    let sq = 0;
    for (let d = 0; d < dk; d++) {
      const x = this.pendKeys[j * dk + d];
      this.pendKeysT[d * C + j] = x;
      sq += x * x;
    }
    for (let d = 0; d < dv; d++) this.pendValuesT[d * C + j] = this.pendValues[j * dv + d];
    this.pendHalfNorms[j] = 0.5 * sq;
  }

  /** Float64 ‖k̂_j − μ_i‖² (pending slot j, row i as its float64 mean), from the differences. */
  rowDistance(j: number, i: number): number {
    const dk = this.keyDim;
    const div = this.config.update.kind === 'mean' ? this.counts[i] : 1;
    const acc = this.keyAcc;
    const keys = this.pendKeys;
    let s = 0;
    for (let d = 0; d < dk; d++) {
      const diff = keys[j * dk + d] - acc[i * dk + d] / div;
      s += diff * diff;
    }
    return s;
  }

  /**
   * Decides the absorb of the full pending buffer (ALGORITHM.md §4.3 a–c) and writes it to
   * tape[at … at+C): the row each token joins, or ~row (= −row−1) for a token that seeds a row.
   * Seeds get rows size, size+1, … in pick order, so the tape alone recovers the trace.
   */
  decideAbsorb(tape: Int32Array, at: number): void {
    const { keyDim: dk, chunkSize: P, rowsCap } = this;
    const n = this.size;
    const cfg = this.config;
    const m = spawnCount(cfg.growth, cfg.capacity, this.tokensSeen, n, P);
    const { bestDist, bestRow, picked, pendKeys } = this;
    // Nearest existing row per token: argmin ½‖μ‖² − k̂·μ by one C×n×d float32 product, then
    // every row within that screen's error bound of the best is re-ranked by its float64
    // distance ‖k̂ − μ‖², summed from the differences (the f32 form cancels for near-duplicate
    // keys). So a decision can differ from the float64 reference's only on a genuine tie, and
    // bestDist (which farthest-point spawn ranks) is the float64 distance.
    if (n > 0) {
      const S = this.scores;
      let maxHalf = 0;
      for (let i = 0; i < n; i++) if (this.halfNorms[i] > maxHalf) maxHalf = this.halfNorms[i];
      // On the WASM kernels the product and the screen run there; a token with one row in its
      // window needs no re-ranking (the others get their scores back and take the loop below).
      const screen = screenScratch(P);
      for (let j = 0; j < P; j++) {
        screen.window[j] = 4 * ((dk + 1) * 2 ** -23) * (this.pendHalfNorms[j] + maxHalf);
      }
      const w = wasmKernels();
      const screened = w !== null;
      if (w !== null) {
        nearestRowScreenWasm(w, this, P, screen.window, S, rowsCap, screen.arg, screen.count);
      }
      if (!screened) matmulABt(pendKeys, 0, dk, P, this.keys, 0, dk, n, dk, S, 0, rowsCap, false);
      for (let j = 0; j < P; j++) {
        if (screened && screen.count[j] === 1) {
          bestRow[j] = screen.arg[j];
          bestDist[j] = this.rowDistance(j, screen.arg[j]);
          continue;
        }
        const base = j * rowsCap;
        let best = Number.POSITIVE_INFINITY;
        for (let i = 0; i < n; i++) {
          const e = this.halfNorms[i] - S[base + i];
          if (e < best) best = e;
        }
        // |error| of one screen value ≤ (dk+1)·2⁻²⁴·(½‖k̂‖² + ½‖μ‖²); the window is 4× the
        // bound on the difference of two such values.
        const window = 4 * ((dk + 1) * 2 ** -23) * (this.pendHalfNorms[j] + maxHalf);
        let exact = Number.POSITIVE_INFINITY;
        let arg = -1;
        for (let i = 0; i < n; i++) {
          if (this.halfNorms[i] - S[base + i] > best + window) continue;
          const d = this.rowDistance(j, i);
          if (d < exact) {
            exact = d;
            arg = i;
          }
        }
        bestDist[j] = exact;
        bestRow[j] = arg;
      }
    } else {
      bestDist.fill(Number.POSITIVE_INFINITY);
      bestRow.fill(-1);
    }
    picked.fill(0);
    let randomPicks: number[] | null = null;
    if (cfg.spawn === 'random' && m > 0) {
      const r = randomSpawn(P, m, this.rngState);
      randomPicks = r.picks;
      this.rngState = r.rngState;
    }
    const picks = screenScratch(P).picks;
    const farthest = cfg.spawn === 'farthest';
    const inWasm =
      m > 0 &&
      spawnRows(
        this.pendKeysT,
        P,
        P,
        dk,
        m,
        farthest,
        randomPicks,
        n,
        bestDist,
        bestRow,
        picked,
        picks,
      );
    if (inWasm) for (let s = 0; s < m; s++) tape[at + picks[s]] = ~(n + s);
    // Seeds row `row` with pending token `pick`: a later (higher) row wins only when strictly nearer.
    const seed = (pick: number, row: number) => {
      picked[pick] = 1;
      tape[at + pick] = ~row;
      const pb = pick * dk;
      for (let j = 0; j < P; j++) {
        const jb = j * dk;
        let dist = 0;
        for (let d = 0; d < dk; d++) {
          const diff = pendKeys[jb + d] - pendKeys[pb + d];
          dist += diff * diff;
        }
        if (dist < bestDist[j]) {
          bestDist[j] = dist;
          bestRow[j] = row;
        }
      }
    };
    // The unpicked token farthest from every row (ties: lowest index), or −1.
    const farthestUnpicked = () => {
      let pick = -1;
      for (let j = 0; j < P; j++) {
        if (!picked[j] && (pick < 0 || bestDist[j] > bestDist[pick])) pick = j;
      }
      return pick;
    };
    for (let s = 0; s < (inWasm ? 0 : m); s++) {
      const pick = cfg.spawn === 'farthest' ? farthestUnpicked() : randomPicks ? randomPicks[s] : s;
      seed(pick, n + s);
    }
    // Novelty spawn: the farthest token still beyond spawnDistance seeds a row, up to capacity.
    const room = noveltyRoom(cfg.spawnDistance, cfg.capacity, n, m, P);
    const lambda = cfg.spawnDistance ?? Number.POSITIVE_INFINITY; // room is 0 when it is off
    for (let s = 0; s < room; s++) {
      const pick = farthestUnpicked();
      if (pick < 0 || !(bestDist[pick] > lambda)) break;
      seed(pick, n + m + s);
    }
    for (let j = 0; j < P; j++) if (!picked[j]) tape[at + j] = bestRow[j];
  }

  /** Applies a decided absorb (spawn, batch M-step) and clears the pending buffer. */
  applyAbsorb(tape: Int32Array, at: number): void {
    const { keyDim: dk, valueDim: dv, chunkSize: P, pendKeys, pendValues } = this;
    const { keyAcc, valueAcc, counts, mark, touched, members } = this;
    const mean = this.config.update.kind === 'mean';
    let touchedCount = 0;
    let size = this.size;
    for (let j = 0; j < P; j++) {
      const code = tape[at + j];
      if (code >= 0) continue;
      const row = ~code;
      counts[row] = 1;
      for (let d = 0; d < dk; d++) keyAcc[row * dk + d] = pendKeys[j * dk + d];
      for (let d = 0; d < dv; d++) valueAcc[row * dv + d] = pendValues[j * dv + d];
      if (row >= size) size = row + 1;
      mark[row] = 1;
      touched[touchedCount++] = row;
    }
    this.size = size;
    let sums = keyAcc;
    let vsums = valueAcc;
    if (!mean) {
      // EMA needs each row's member mean before it moves: gather sums in a side buffer.
      if (!this.emaSums) this.emaSums = new Float64Array(this.rowsCap * (dk + dv));
      sums = this.emaSums;
      vsums = this.emaSums.subarray(this.rowsCap * dk);
    }
    for (let j = 0; j < P; j++) {
      const row = tape[at + j];
      if (row < 0) continue;
      if (!mark[row]) {
        mark[row] = 1;
        touched[touchedCount++] = row;
      }
      members[row] += 1;
      if (mean) {
        for (let d = 0; d < dk; d++) sums[row * dk + d] += pendKeys[j * dk + d];
        for (let d = 0; d < dv; d++) vsums[row * dv + d] += pendValues[j * dv + d];
      } else {
        // ema sums Σ(x − D) against the row before this absorb's merges (as the reference).
        for (let d = 0; d < dk; d++)
          sums[row * dk + d] += pendKeys[j * dk + d] - keyAcc[row * dk + d];
        for (let d = 0; d < dv; d++) {
          vsums[row * dv + d] += pendValues[j * dv + d] - valueAcc[row * dv + d];
        }
      }
    }
    for (let t = 0; t < touchedCount; t++) {
      const row = touched[t];
      const mi = members[row];
      counts[row] += mi;
      if (!mean && mi > 0) {
        // Same formula as the reference: D ← D + (η/m)·Σ(x − D).
        const step = (this.config.update as { rate: number }).rate / mi;
        for (let d = 0; d < dk; d++) {
          const a = row * dk + d;
          keyAcc[a] += sums[a] * step;
          sums[a] = 0;
        }
        for (let d = 0; d < dv; d++) {
          const a = row * dv + d;
          valueAcc[a] += vsums[a] * step;
          vsums[a] = 0;
        }
      }
      members[row] = 0;
      mark[row] = 0;
      this.refreshRow(row);
    }
    this.pendingCount = 0;
  }

  /**
   * Undoes `applyAbsorb` for `update: 'mean'` (subtract the members' sums and counts, drop the
   * spawned rows) and restores the pending buffer's contents, which the caller re-staged.
   */
  undoAbsorb(tape: Int32Array, at: number, sizeBefore: number): void {
    const { keyDim: dk, valueDim: dv, chunkSize: P, pendKeys, pendValues } = this;
    const { keyAcc, valueAcc, counts, mark, touched } = this;
    let touchedCount = 0;
    for (let j = 0; j < P; j++) {
      const row = tape[at + j];
      if (row < 0 || row >= sizeBefore) continue;
      counts[row] -= 1;
      for (let d = 0; d < dk; d++) keyAcc[row * dk + d] -= pendKeys[j * dk + d];
      for (let d = 0; d < dv; d++) valueAcc[row * dv + d] -= pendValues[j * dv + d];
      if (!mark[row]) {
        mark[row] = 1;
        touched[touchedCount++] = row;
      }
    }
    this.size = sizeBefore;
    for (let t = 0; t < touchedCount; t++) {
      mark[touched[t]] = 0;
      this.refreshRow(touched[t]);
    }
  }
}
