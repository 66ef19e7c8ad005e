// Initial and final states in the pool's shared arena as flat float64 rows, so that a state
// crosses between threads by plain copies instead of a serialize/deserialize round trip:
// [size, pendingCount, tokensSeen, rngState, counts[size], keys[size·dk], values[size·dv],
//  pendingKeys[pendingCount·dk], pendingValues[pendingCount·dv]] (keys and values are row means).
import type { HeadWorkspace, StateRows } from '../chunked/head.js';
import { OvqState, STORAGE } from '../ovq/state.js';
import type { ResolvedOvqConfig } from '../ovq/types.js';

const HEADER = 4;

/** Float64 elements of a state with `size` rows and `pending` pending tokens. */
export function rowsLength(size: number, pending: number, dk: number, dv: number): number {
  return HEADER + size * (1 + dk + dv) + pending * (dk + dv);
}

/** Views of the state at src[at …] (nothing copied). */
export function readRows(src: Float64Array, at: number, dk: number, dv: number): StateRows {
  const size = src[at];
  const pendingCount = src[at + 1];
  let o = at + HEADER;
  const take = (n: number) => src.subarray(o, (o += n));
  return {
    size,
    pendingCount,
    tokensSeen: src[at + 2],
    rngState: src[at + 3],
    counts: take(size),
    keys: take(size * dk),
    values: take(size * dv),
    pendingKeys: take(pendingCount * dk),
    pendingValues: take(pendingCount * dv),
  };
}

/** An OvqState's contents as StateRows (live views of its storage; nothing is copied). */
export function rowsOfState(view: OvqState): StateRows {
  const s = view[STORAGE];
  return {
    size: s.size,
    pendingCount: s.pendingCount,
    tokensSeen: s.tokensSeen,
    rngState: s.rngState,
    counts: s.counts,
    keys: s.centroidKeys,
    values: s.centroidValues,
    pendingKeys: s.pendingKeys,
    pendingValues: s.pendingValues,
  };
}

/** Writes `rows` to dst[at …]. */
export function writeRows(rows: StateRows, dst: Float64Array, at: number, dk: number, dv: number) {
  const { size, pendingCount } = rows;
  dst[at] = size;
  dst[at + 1] = pendingCount;
  dst[at + 2] = rows.tokensSeen;
  dst[at + 3] = rows.rngState;
  let o = at + HEADER;
  const put = (x: ArrayLike<number>, n: number) => {
    for (let i = 0; i < n; i++) dst[o + i] = x[i];
    o += n;
  };
  put(rows.counts, size);
  put(rows.keys, size * dk);
  put(rows.values, size * dv);
  put(rows.pendingKeys, pendingCount * dk);
  put(rows.pendingValues, pendingCount * dv);
}

/**
 * Writes a worker's finished head to dst[at …], the same float64 values `ws.toState()` holds;
 * throws if it would pass `slot` elements.
 */
export function writeWorkspace(ws: HeadWorkspace, dst: Float64Array, at: number, slot: number) {
  const { keyDim: dk, valueDim: dv, size, pendingCount } = ws;
  const length = rowsLength(size, pendingCount, dk, dv);
  if (length > slot) {
    throw new Error(`final state of ${length} float64 values exceeds its ${slot}-value slot`);
  }
  let o = at + HEADER;
  const take = (n: number) => dst.subarray(o, (o += n));
  const counts = take(size);
  const keys = take(size * dk);
  const values = take(size * dv);
  const counters = ws.exportRows(
    counts,
    keys,
    values,
    take(pendingCount * dk),
    take(pendingCount * dv),
  );
  dst[at] = size;
  dst[at + 1] = pendingCount;
  dst[at + 2] = counters.tokensSeen;
  dst[at + 3] = counters.rngState;
}

/** A new OvqState holding `rows` (copied) under `config`. */
export function stateOfRows(
  rows: StateRows,
  dk: number,
  dv: number,
  config: ResolvedOvqConfig,
): OvqState {
  const view = new OvqState(dk, dv, { ...config });
  const s = view[STORAGE];
  s.reserve(rows.size);
  for (let i = 0; i < rows.size; i++) {
    s.pushRow(rows.keys, i * dk, rows.values, i * dv, rows.counts[i]);
  }
  for (let j = 0; j < rows.pendingCount * dk; j++) s.pendingKeys[j] = rows.pendingKeys[j];
  for (let j = 0; j < rows.pendingCount * dv; j++) s.pendingValues[j] = rows.pendingValues[j];
  s.pendingCount = rows.pendingCount;
  s.tokensSeen = rows.tokensSeen;
  s.rngState = rows.rngState;
  return view;
}
