// The chunked Float32 forward pass (ALGORITHM.md §4, "Chunked form"): per chunk, read every query
// at once, then absorb. Same inputs and outputs as the reference `ovqAttentionReference`, plus streaming
// from a given OvqState and a caller-provided output buffer.
import { spawnCount } from '../ovq/growth.js';
import { OvqState } from '../ovq/state.js';
import type { OvqConfig, OvqTrace, ResolvedOvqConfig, Seq } from '../ovq/types.js';
import { OvqInputError, resolveOvqConfig, validateSeq } from '../validate.js';
import { HeadWorkspace } from './head.js';
import { normalizeRowInto } from './kernels.js';
import { ReadScratch, readChunk } from './read.js';

export type ChunkedForwardOptions = {
  /**
   * Continue this stream (not modified; the continued stream is returned as `state`): its rows,
   * pending buffer and counters. Its config must match `config` except `capacity`.
   */
  initialState?: OvqState;
  /** @deprecated The old name of `initialState` (same meaning). */
  state?: OvqState;
  /** Preallocated output, [seqLen, valueDim]; every element is written. */
  out?: Float32Array;
};

export type ChunkedForwardResult = {
  /** Outputs, row-major [seqLen, valueDim]. */
  output: Float32Array;
  /** The stream after this call, as core's float64 OvqState (comparable, serializable, appendable). */
  state: OvqState;
  /** One record per absorb made during this call. */
  trace: OvqTrace;
};

/**
 * The tape of an absorb sequence: `codes[a·C + j]` is the row that token j of absorb a joined, or
 * ~row for a seed; `sizeBefore[a]` the dictionary size before absorb a. 4·(T + T/C) bytes: the
 * only memory of the chunked path that grows with T (besides inputs, outputs and gradients).
 */
export type AbsorbTape = { codes: Int32Array; sizeBefore: Int32Array };

export function createTape(absorbs: number, chunkSize: number): AbsorbTape {
  return { codes: new Int32Array(absorbs * chunkSize), sizeBefore: new Int32Array(absorbs) };
}

/** Expands a tape into core's OvqTrace (spawned tokens in pick order, assignment per token). */
export function traceFromTape(tape: AbsorbTape, chunkSize: number): OvqTrace {
  const trace: OvqTrace = [];
  for (let a = 0; a < tape.sizeBefore.length; a++) {
    const sizeBefore = tape.sizeBefore[a];
    const spawned: number[] = [];
    const assignment = new Array<number>(chunkSize);
    for (let j = 0; j < chunkSize; j++) {
      const code = tape.codes[a * chunkSize + j];
      const row = code < 0 ? ~code : code;
      assignment[j] = row;
      if (code < 0) spawned[row - sizeBefore] = j;
    }
    trace.push({ sizeBefore, spawned, assignment });
  }
  return trace;
}

/** Stages `rows` tokens from position t: k̂ and v into pending slots p0…, q̂ into scratch. */
export function stageTokens(
  ws: HeadWorkspace,
  s: ReadScratch | null,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  kOff: number,
  vOff: number,
  t: number,
  rows: number,
  p0: number,
  kNorm: Float64Array | null,
): void {
  const { keyDim: dk, valueDim: dv } = ws;
  const normalize = ws.config.normalize;
  for (let r = 0; r < rows; r++) {
    const src = kOff + (t + r) * dk;
    const norm = normalizeRowInto(k, src, dk, ws.pendKeys, (p0 + r) * dk, normalize);
    if (kNorm) kNorm[p0 + r] = norm;
    if (s) s.qNorm[r] = normalizeRowInto(q, src, dk, s.qHat, r * dk, normalize);
    const vs = vOff + (t + r) * dv;
    const vd = (p0 + r) * dv;
    for (let d = 0; d < dv; d++) ws.pendValues[vd + d] = v[vs + d];
    ws.refreshPending(p0 + r);
  }
}

/**
 * Streams T tokens of one head through `ws` (reads into out[outOff…] when `out` is given, and
 * absorbs at every full chunk), recording absorbs into `tape` from index `absorbAt`.
 */
export function forwardHead(
  ws: HeadWorkspace,
  s: ReadScratch,
  seq: { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number> },
  kOff: number,
  vOff: number,
  T: number,
  out: Float32Array,
  outOff: number,
  tape: AbsorbTape,
): void {
  const C = ws.chunkSize;
  const dv = ws.valueDim;
  let absorbAt = 0;
  for (let t = 0; t < T; ) {
    const p0 = ws.pendingCount;
    const rows = Math.min(C - p0, T - t);
    stageTokens(ws, s, seq.q, seq.k, seq.v, kOff, vOff, t, rows, p0, null);
    readChunk(ws, s, rows, p0, out, outOff + t * dv);
    ws.pendingCount = p0 + rows;
    ws.tokensSeen += rows;
    if (ws.pendingCount === C) {
      tape.sizeBefore[absorbAt] = ws.size;
      ws.decideAbsorb(tape.codes, absorbAt * C);
      ws.applyAbsorb(tape.codes, absorbAt * C);
      absorbAt++;
    }
    t += rows;
  }
}

/**
 * Rows a call will need: without novelty spawn, dictionary sizes follow the growth schedule alone
 * (not the data), so replaying spawnCount over the call's absorbs gives the exact final size; with
 * it, every absorbed token may seed a row up to the capacity, which bounds the size instead.
 */
export function rowsNeeded(config: ResolvedOvqConfig, T: number, state?: OvqState): number {
  const C = config.chunkSize;
  const start = state ? state.size : 0;
  let n = start;
  let seen = state ? state.tokensSeen : 0;
  let fill = C - (state ? state.pendingCount : 0);
  let absorbed = 0;
  for (let left = T; left >= fill; left -= fill, fill = C) {
    seen += fill;
    absorbed += C;
    n += spawnCount(config.growth, config.capacity, seen, n, C);
  }
  if (config.spawnDistance !== undefined)
    n = Math.max(n, Math.min(config.capacity, start + absorbed));
  return Math.max(1, n);
}

/** Checks that `state` can be continued under `config` (only the capacity may change). */
export function checkContinuable(
  state: unknown,
  config: ResolvedOvqConfig,
  keyDim: number,
  valueDim: number,
  argument: string,
): OvqState {
  if (!(state instanceof OvqState)) {
    throw new OvqInputError(
      argument,
      'expected an OvqState (createOvqState, ovqAttentionReference, ovqAttention or deserializeOvqState)',
    );
  }
  if (state.keyDim !== keyDim || state.valueDim !== valueDim) {
    throw new OvqInputError(
      argument,
      `has keyDim ${state.keyDim}, valueDim ${state.valueDim}; the sequence has keyDim ${keyDim}, valueDim ${valueDim}`,
    );
  }
  for (const key of [
    'chunkSize',
    'beta',
    'spawn',
    'spawnDistance',
    'read',
    'normalize',
    'seed',
  ] as const) {
    if (state.config[key] !== config[key]) {
      throw new OvqInputError(
        `config.${key}`,
        `got ${String(config[key])}; ${argument} was created with ${String(state.config[key])} (only capacity may change between calls)`,
      );
    }
  }
  for (const key of ['growth', 'update'] as const) {
    const a = JSON.stringify(config[key]);
    const b = JSON.stringify(state.config[key]);
    if (a !== b) {
      throw new OvqInputError(
        `config.${key}`,
        `got ${a}; ${argument} was created with ${b} (only capacity may change between calls)`,
      );
    }
  }
  return state;
}

/**
 * Resolves `options.initialState` (and the forward's older `options.state`, kept as an alias) to a
 * state that can be continued under `config`, or undefined for an empty start.
 */
export function resolveInitialState(
  options: { initialState?: unknown; state?: unknown },
  config: ResolvedOvqConfig,
  keyDim: number,
  valueDim: number,
): OvqState | undefined {
  const { initialState, state } = options;
  if (initialState !== undefined && state !== undefined && initialState !== state) {
    throw new OvqInputError(
      'options.state',
      'is a deprecated alias of options.initialState; pass only options.initialState',
    );
  }
  if (initialState !== undefined) {
    return checkContinuable(initialState, config, keyDim, valueDim, 'options.initialState');
  }
  if (state !== undefined)
    return checkContinuable(state, config, keyDim, valueDim, 'options.state');
  return undefined;
}

/** Checks a caller-provided output buffer. */
export function checkOut(
  out: unknown,
  length: number,
  argument: string,
  shape: string,
): Float32Array {
  if (!(out instanceof Float32Array)) {
    throw new OvqInputError(
      argument,
      `got ${typeof out}; expected a Float32Array of ${shape} = ${length} values`,
    );
  }
  if (out.length !== length) {
    throw new OvqInputError(argument, `has ${out.length} values; expected ${shape} = ${length}`);
  }
  return out;
}

/**
 * OVQ-attention over one head on the chunked Float32 path. Same function as the reference
 * `ovqAttentionReference` up to float32 rounding; with `options.initialState`, continues that stream, so any split
 * of a sequence into calls gives the same outputs and final state as one call.
 */
export function ovqAttention(
  seq: Seq,
  config: OvqConfig,
  options: ChunkedForwardOptions = {},
): ChunkedForwardResult {
  const resolved = resolveOvqConfig(config);
  const { seqLen: T, keyDim, valueDim } = validateSeq(seq);
  const init = resolveInitialState(options, resolved, keyDim, valueDim);
  const output =
    options.out === undefined
      ? new Float32Array(T * valueDim)
      : checkOut(options.out, T * valueDim, 'options.out', 'seqLen*valueDim');
  const C = resolved.chunkSize;
  const rowsCap = rowsNeeded(resolved, T, init);
  const ws = new HeadWorkspace(keyDim, valueDim, resolved, rowsCap);
  if (init) ws.load(init, resolved);
  else ws.reset(resolved);
  const scratch = new ReadScratch(C, rowsCap, keyDim, valueDim);
  const tape = createTape(Math.floor((ws.pendingCount + T) / C), C);
  forwardHead(ws, scratch, seq, 0, 0, T, output, 0, tape);
  return { output, state: ws.toState(), trace: traceFromTape(tape, C) };
}
