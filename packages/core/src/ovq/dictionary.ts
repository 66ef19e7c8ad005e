// The absorb step of ALGORITHM.md §4.3 in float64: spawn new centroids from the pending buffer,
// assign the rest to their nearest row (batch E-step), then update the rows (batch M-step).
import { OvqInputError } from '../validate.js';
import { noveltyRoom, spawnCount } from './growth.js';
import { mulberry32Step } from './rng.js';
import { type OvqState, STORAGE } from './state.js';
import type { AbsorbRecord } from './types.js';

/** ‖a[ai…] − b[bi…]‖² over `dim` coordinates. */
export function squaredDistance(
  a: ArrayLike<number>,
  ai: number,
  b: ArrayLike<number>,
  bi: number,
  dim: number,
): number {
  let s = 0;
  for (let d = 0; d < dim; d++) {
    const diff = a[ai + d] - b[bi + d];
    s += diff * diff;
  }
  return s;
}

/**
 * Farthest-point selection of `m` of the `count` pending keys: start from each key's distance to
 * its nearest existing row (+∞ with no rows), repeatedly pick the farthest unpicked key (ties:
 * lowest index) and shrink the distances by the new pick.
 */
export function farthestPointSpawn(
  pendingKeys: ArrayLike<number>,
  count: number,
  rowKeys: ArrayLike<number>,
  rows: number,
  dim: number,
  m: number,
): number[] {
  const dist = new Float64Array(count);
  for (let j = 0; j < count; j++) {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < rows; i++) {
      const d = squaredDistance(pendingKeys, j * dim, rowKeys, i * dim, dim);
      if (d < best) best = d;
    }
    dist[j] = best;
  }
  const picked = new Uint8Array(count);
  const order: number[] = [];
  for (let s = 0; s < m; s++) {
    let pick = -1;
    for (let j = 0; j < count; j++) {
      if (!picked[j] && (pick < 0 || dist[j] > dist[pick])) pick = j;
    }
    picked[pick] = 1;
    order.push(pick);
    for (let j = 0; j < count; j++) {
      const d = squaredDistance(pendingKeys, j * dim, pendingKeys, pick * dim, dim);
      if (d < dist[j]) dist[j] = d;
    }
  }
  return order;
}

/**
 * Novelty spawn (`spawnDistance`): after the scheduled picks, keep picking the farthest unpicked
 * pending key while its squared distance to every row (old rows and the keys already picked)
 * exceeds `distance`, at most `room` times. Returns the extra picks in order.
 */
export function noveltySpawn(
  pendingKeys: ArrayLike<number>,
  count: number,
  rowKeys: ArrayLike<number>,
  rows: number,
  dim: number,
  picked: readonly number[],
  distance: number,
  room: number,
): number[] {
  const dist = new Float64Array(count);
  const taken = new Uint8Array(count);
  for (const p of picked) taken[p] = 1;
  for (let j = 0; j < count; j++) {
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < rows; i++) {
      best = Math.min(best, squaredDistance(pendingKeys, j * dim, rowKeys, i * dim, dim));
    }
    for (const p of picked) {
      best = Math.min(best, squaredDistance(pendingKeys, j * dim, pendingKeys, p * dim, dim));
    }
    dist[j] = best;
  }
  const extra: number[] = [];
  while (extra.length < room) {
    let pick = -1;
    for (let j = 0; j < count; j++) {
      if (!taken[j] && (pick < 0 || dist[j] > dist[pick])) pick = j;
    }
    if (pick < 0 || !(dist[pick] > distance)) break;
    taken[pick] = 1;
    extra.push(pick);
    for (let j = 0; j < count; j++) {
      dist[j] = Math.min(
        dist[j],
        squaredDistance(pendingKeys, j * dim, pendingKeys, pick * dim, dim),
      );
    }
  }
  return extra;
}

/** Seeded choice of m of `count` indices (partial Fisher–Yates); returns picks and the new RNG state. */
export function randomSpawn(
  count: number,
  m: number,
  rngState: number,
): { picks: number[]; rngState: number } {
  const index = Array.from({ length: count }, (_, i) => i);
  let state = rngState;
  for (let s = 0; s < m; s++) {
    const step = mulberry32Step(state);
    state = step.state;
    const r = s + Math.floor(step.value * (count - s));
    [index[s], index[r]] = [index[r], index[s]];
  }
  return { picks: index.slice(0, m), rngState: state };
}

/** Index of the row nearest to key j (ties: lowest row). */
export function nearestRow(
  keys: ArrayLike<number>,
  j: number,
  rowKeys: ArrayLike<number>,
  rows: number,
  dim: number,
): number {
  let best = Number.POSITIVE_INFINITY;
  let arg = -1;
  for (let i = 0; i < rows; i++) {
    const d = squaredDistance(keys, j * dim, rowKeys, i * dim, dim);
    if (d < best) {
      best = d;
      arg = i;
    }
  }
  return arg;
}

function checkReplay(
  record: AbsorbRecord,
  size: number,
  pending: number,
  m: number,
  room: number,
): void {
  if (record.sizeBefore !== size) {
    throw new OvqInputError(
      'options.replay',
      `absorb record has sizeBefore ${record.sizeBefore}; the dictionary has ${size} rows`,
    );
  }
  if (record.spawned.length < m || record.spawned.length > m + room) {
    throw new OvqInputError(
      'options.replay',
      room === 0
        ? `absorb record spawns ${record.spawned.length} rows; the growth schedule asks for ${m}`
        : `absorb record spawns ${record.spawned.length} rows; the growth schedule asks for ${m} and novelty spawn allows ${room} more`,
    );
  }
  if (record.assignment.length !== pending) {
    throw new OvqInputError(
      'options.replay',
      `absorb record assigns ${record.assignment.length} tokens; ${pending} are pending`,
    );
  }
}

/**
 * Absorbs the whole pending buffer into the dictionary (ALGORITHM.md §4.3 a–e) and returns the
 * decisions taken. With `replay`, those decisions are taken from the record instead of computed.
 */
export function absorbPending(view: OvqState, replay?: AbsorbRecord): AbsorbRecord {
  const state = view[STORAGE];
  const { keyDim, valueDim, config } = state;
  const pending = state.pendingCount;
  const pk = state.pendingKeys;
  const pv = state.pendingValues;
  const sizeBefore = state.size;
  const m = spawnCount(config.growth, config.capacity, state.tokensSeen, sizeBefore, pending);
  const room = noveltyRoom(config.spawnDistance, config.capacity, sizeBefore, m, pending);

  let spawned: number[];
  if (replay) {
    checkReplay(replay, sizeBefore, pending, m, room);
    spawned = replay.spawned.slice();
    // Keep the RNG stream where an un-replayed run would leave it.
    if (config.spawn === 'random')
      state.rngState = randomSpawn(pending, m, state.rngState).rngState;
  } else if (config.spawn === 'farthest') {
    spawned = farthestPointSpawn(pk, pending, state.centroidKeys, sizeBefore, keyDim, m);
  } else if (config.spawn === 'first') {
    spawned = Array.from({ length: m }, (_, j) => j);
  } else {
    const r = randomSpawn(pending, m, state.rngState);
    spawned = r.picks;
    state.rngState = r.rngState;
  }
  if (!replay && room > 0 && config.spawnDistance !== undefined) {
    const extra = noveltySpawn(
      pk,
      pending,
      state.centroidKeys,
      sizeBefore,
      keyDim,
      spawned,
      config.spawnDistance,
      room,
    );
    spawned = spawned.concat(extra);
  }

  const assignment = new Array<number>(pending).fill(-1);
  for (const j of spawned) assignment[j] = state.pushRow(pk, j * keyDim, pv, j * valueDim, 1);

  // Batch E-step against the rows as they stand before any merge of this absorb.
  const rowKeys = state.centroidKeys;
  for (let j = 0; j < pending; j++) {
    if (assignment[j] >= 0) continue;
    const row = replay ? replay.assignment[j] : nearestRow(pk, j, rowKeys, state.size, keyDim);
    if (!(Number.isInteger(row) && row >= 0 && row < state.size)) {
      throw new OvqInputError(
        'options.replay',
        `token ${j} is assigned to row ${row}; expected 0 ≤ row < ${state.size}`,
      );
    }
    assignment[j] = row;
  }
  if (replay) {
    for (let j = 0; j < pending; j++) {
      if (replay.assignment[j] !== assignment[j]) {
        throw new OvqInputError(
          'options.replay',
          `token ${j} seeded row ${assignment[j]} but the record assigns it to ${replay.assignment[j]}`,
        );
      }
    }
  }

  // Batch M-step (ALGORITHM.md §4.3d): D ← D + (Σk − m·D)/c, with Σk − m·D summed as Σ(k − D)
  // against the rows before this absorb's merges, so members equal to their row leave it exact.
  const isSeed = new Uint8Array(pending);
  for (const j of spawned) isSeed[j] = 1;
  const members = new Float64Array(state.size);
  const keyDiffs = new Float64Array(state.size * keyDim);
  const valueDiffs = new Float64Array(state.size * valueDim);
  const counts = state.counts;
  const keys = state.centroidKeys;
  const values = state.centroidValues;
  for (let j = 0; j < pending; j++) {
    if (isSeed[j]) continue;
    const row = assignment[j];
    members[row] += 1;
    for (let d = 0; d < keyDim; d++) {
      keyDiffs[row * keyDim + d] += pk[j * keyDim + d] - keys[row * keyDim + d];
    }
    for (let d = 0; d < valueDim; d++) {
      valueDiffs[row * valueDim + d] += pv[j * valueDim + d] - values[row * valueDim + d];
    }
  }
  const update = config.update;
  for (let i = 0; i < state.size; i++) {
    const mi = members[i];
    if (mi === 0) continue;
    counts[i] += mi;
    if (update.kind === 'mean') {
      const c = counts[i];
      for (let d = 0; d < keyDim; d++) keys[i * keyDim + d] += keyDiffs[i * keyDim + d] / c;
      for (let d = 0; d < valueDim; d++) {
        values[i * valueDim + d] += valueDiffs[i * valueDim + d] / c;
      }
    } else {
      // ema: D ← D + η(Σk/m − D) = D + (η/m)·Σ(k − D).
      const scale = update.rate / mi;
      for (let d = 0; d < keyDim; d++) keys[i * keyDim + d] += keyDiffs[i * keyDim + d] * scale;
      for (let d = 0; d < valueDim; d++) {
        values[i * valueDim + d] += valueDiffs[i * valueDim + d] * scale;
      }
    }
  }
  state.pendingCount = 0;
  return { sizeBefore, spawned, assignment };
}
