// States crossing between the caller's thread and the pool's workers as float64 rows in shared
// memory, with no serialize/deserialize round trip. Initial states are packed in the arena:
// [size, pendingCount, tokensSeen, rngState, counts[size], keys[size·dk], values[size·dv],
//  pendingKeys[pendingCount·dk], pendingValues[pendingCount·dv]] (keys and values are row means).
// Final states are written by the workers straight into the buffers the returned states keep.
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
 * Where a final state sits in its own SharedArrayBuffer (one per head, made by the caller for
 * the call and kept by the returned state, so nothing is copied on the caller's thread): float64
 * offsets of [size, pendingCount, tokensSeen, rngState], counts [rowsCap], keys [rowsCap·dk],
 * values [rowsCap·dv], pending keys [C·dk] and pending values [C·dv].
 */
export type FinalLayout = {
  rowsCap: number;
  dk: number;
  dv: number;
  counts: number;
  keys: number;
  values: number;
  pendingKeys: number;
  pendingValues: number;
  length: number;
};

export function finalLayout(rowsCap: number, C: number, dk: number, dv: number): FinalLayout {
  const counts = HEADER;
  const keys = counts + rowsCap;
  const values = keys + rowsCap * dk;
  const pendingKeys = values + rowsCap * dv;
  const pendingValues = pendingKeys + C * dk;
  const length = pendingValues + C * dv;
  return { rowsCap, dk, dv, counts, keys, values, pendingKeys, pendingValues, length };
}

/** Writes a worker's finished head to `dst` (laid out by `L`): the values toState() holds. */
export function writeFinal(ws: HeadWorkspace, dst: Float64Array, L: FinalLayout): void {
  const { size, pendingCount } = ws;
  if (size > L.rowsCap || dst.length < L.length) {
    throw new Error(`final state of ${size} rows exceeds its slot of ${L.rowsCap}`);
  }
  const part = (at: number, n: number) => dst.subarray(at, at + n);
  const counters = ws.exportRows(
    part(L.counts, size),
    part(L.keys, size * L.dk),
    part(L.values, size * L.dv),
    part(L.pendingKeys, pendingCount * L.dk),
    part(L.pendingValues, pendingCount * L.dv),
  );
  dst[0] = size;
  dst[1] = pendingCount;
  dst[2] = counters.tokensSeen;
  dst[3] = counters.rngState;
}

/** The OvqState over a final state written by writeFinal: its rows are taken, not copied. */
export function stateOfFinal(
  src: Float64Array,
  L: FinalLayout,
  config: ResolvedOvqConfig,
): OvqState {
  const { rowsCap, dk, dv } = L;
  const view = new OvqState(dk, dv, { ...config });
  const s = view[STORAGE];
  const pendingCount = src[1];
  const part = (at: number, n: number) => src.subarray(at, at + n);
  s.adopt(
    src[0],
    part(L.counts, rowsCap),
    part(L.keys, rowsCap * dk),
    part(L.values, rowsCap * dv),
  );
  s.pendingKeys.set(part(L.pendingKeys, pendingCount * dk));
  s.pendingValues.set(part(L.pendingValues, pendingCount * dv));
  s.pendingCount = pendingCount;
  s.tokensSeen = src[2];
  s.rngState = src[3];
  return view;
}
