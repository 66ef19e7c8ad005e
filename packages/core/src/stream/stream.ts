// Token-by-token decoding on the chunked Float32 path. One HeadWorkspace and one ReadScratch live
// as long as the stream, so a step is stage → read (→ absorb at a chunk boundary) with no
// workspace rebuild, no state clone and no allocation; buffers double only when the dictionary
// outgrows them. Same function as `ovqAttention` on the same tokens (any split).
import {
  checkContinuable,
  checkOut,
  createTape,
  forwardHead,
  stageTokens,
} from '../chunked/forward.js';
import { HeadWorkspace } from '../chunked/head.js';
import { ReadScratch } from '../chunked/read.js';
import { spawnCount } from '../ovq/growth.js';
import { OvqState } from '../ovq/state.js';
import type { OvqConfig, ResolvedOvqConfig, Seq } from '../ovq/types.js';
import {
  OvqInputError,
  requireFiniteArray,
  requireNonNegativeInteger,
  requirePositiveInteger,
  resolveOvqConfig,
} from '../validate.js';
import { wasmKernels } from '../wasm/simd.js';
import { ResidentReader } from './resident.js';

export type OvqStreamOptions = {
  /** Resume this stream (e.g. from `deserializeOvqState`); it is copied, never modified. */
  state?: OvqState;
};

export type OvqStream = {
  readonly keyDim: number;
  readonly valueDim: number;
  /**
   * Processes one token (q, k: keyDim values; v: valueDim values) and returns its output
   * (valueDim values). Without `out` the result is a fresh array; with `out` (a Float32Array of
   * valueDim values) it is written there and returned, and the step allocates nothing.
   */
  step(
    q: ArrayLike<number>,
    k: ArrayLike<number>,
    v: ArrayLike<number>,
    out?: Float32Array,
  ): Float32Array;
  /** Processes `seq.seqLen` tokens and returns their outputs, [seqLen, valueDim]. */
  append(seq: Omit<Seq, 'keyDim' | 'valueDim'> & Partial<Seq>, out?: Float32Array): Float32Array;
  /** A snapshot of the stream so far (a new OvqState on each access; serializable, resumable). */
  readonly state: OvqState;
  /** Releases the buffers; every later call throws OvqInputError. */
  dispose(): void;
};

/** Rows the dictionary starts with (doubled as it grows, never past what the schedule reaches). */
const INITIAL_ROWS = 64;

class Stream implements OvqStream {
  readonly keyDim: number;
  readonly valueDim: number;
  private readonly config: ResolvedOvqConfig;
  private ws: HeadWorkspace | null;
  private scratch: ReadScratch;
  private readonly tape: ReturnType<typeof createTape>;
  /** The WASM one-token reader (null: not made yet, or the JS kernels are in use). */
  private reader: ResidentReader | null = null;
  /** The reader's resident copy is behind the workspace (a piece went the chunked way). */
  private readerStale = false;
  private readonly token: { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number> } = {
    q: [],
    k: [],
    v: [],
  };

  constructor(keyDim: number, valueDim: number, config: ResolvedOvqConfig, init?: OvqState) {
    this.keyDim = keyDim;
    this.valueDim = valueDim;
    this.config = config;
    const rows = Math.max(1, Math.min(config.capacity, INITIAL_ROWS), init ? init.size : 0);
    this.ws = new HeadWorkspace(keyDim, valueDim, config, rows);
    this.scratch = new ReadScratch(config.chunkSize, rows, keyDim, valueDim);
    this.tape = createTape(1, config.chunkSize);
    if (init) this.ws.load(init, config);
    else this.ws.reset(config);
  }

  private live(): HeadWorkspace {
    if (this.ws === null) throw new OvqInputError('stream', 'has been disposed');
    return this.ws;
  }

  /**
   * Makes sure the rows fit the absorb that `rows` more tokens from the current position would
   * trigger (at most one: callers feed at most up to the next chunk boundary).
   */
  private reserveFor(rows: number): HeadWorkspace {
    const ws = this.live();
    const { chunkSize: C, growth, capacity } = this.config;
    if (ws.pendingCount + rows < C) return ws;
    let need = ws.size + spawnCount(growth, capacity, ws.tokensSeen + rows, ws.size, C);
    // Novelty spawn may seed any of the chunk's tokens, up to the capacity.
    if (this.config.spawnDistance !== undefined)
      need = Math.max(need, Math.min(capacity, ws.size + C));
    if (need <= ws.rowsCap) return ws;
    const next = Math.max(need, 2 * ws.rowsCap);
    const grown = new HeadWorkspace(this.keyDim, this.valueDim, this.config, next);
    copyWorkspace(ws, grown);
    this.ws = grown;
    this.scratch = new ReadScratch(C, next, this.keyDim, this.valueDim);
    this.reader = null; // its layout follows rowsCap: a new one is made on the next step
    return grown;
  }

  /** The resident WASM reader, in sync with the workspace; null when the JS kernels are in use. */
  private readerFor(ws: HeadWorkspace): ResidentReader | null {
    if (wasmKernels() === null) {
      this.readerStale = true;
      return null;
    }
    if (this.reader === null) {
      this.reader = ResidentReader.create(ws);
      this.readerStale = false;
    } else if (this.readerStale) {
      this.reader.syncAll(ws);
      this.readerStale = false;
    }
    return this.reader;
  }

  /** One validated token: stage, read, absorb at a chunk boundary (forwardHead with T = 1). */
  private runOne(
    token: { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number> },
    out: Float32Array,
  ): void {
    const ws = this.reserveFor(1);
    const reader = this.readerFor(ws);
    if (reader === null) {
      forwardHead(ws, this.scratch, token, 0, 0, 1, out, 0, this.tape);
      return;
    }
    const p0 = ws.pendingCount;
    stageTokens(ws, this.scratch, token.q, token.k, token.v, 0, 0, 0, 1, p0, null);
    reader.syncPending(ws, p0);
    reader.read(ws, this.scratch.qHat, p0, out, 0);
    ws.pendingCount = p0 + 1;
    ws.tokensSeen += 1;
    if (ws.pendingCount === this.config.chunkSize) {
      this.tape.sizeBefore[0] = ws.size;
      ws.decideAbsorb(this.tape.codes, 0);
      ws.applyAbsorb(this.tape.codes, 0);
      reader.syncRows(ws);
    }
  }

  /** Runs `T` validated tokens from offset `t0` of `seq` into out[outOff…]. */
  private run(
    seq: { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number> },
    T: number,
    out: Float32Array,
  ): void {
    const { keyDim: dk, valueDim: dv } = this;
    const C = this.config.chunkSize;
    for (let t = 0; t < T; ) {
      const rows = Math.min(C - this.live().pendingCount, T - t);
      const ws = this.reserveFor(rows);
      forwardHead(ws, this.scratch, seq, t * dk, t * dv, rows, out, t * dv, this.tape);
      t += rows;
    }
    this.readerStale = true;
  }

  step(
    q: ArrayLike<number>,
    k: ArrayLike<number>,
    v: ArrayLike<number>,
    out?: Float32Array,
  ): Float32Array {
    this.live();
    // Everything is checked before the stream moves, so a rejected token changes nothing.
    requireFiniteArray('q', q, this.keyDim, 'keyDim');
    requireFiniteArray('k', k, this.keyDim, 'keyDim');
    requireFiniteArray('v', v, this.valueDim, 'valueDim');
    const output =
      out === undefined
        ? new Float32Array(this.valueDim)
        : checkOut(out, this.valueDim, 'out', 'valueDim');
    const token = this.token;
    token.q = q;
    token.k = k;
    token.v = v;
    this.runOne(token, output);
    return output;
  }

  append(seq: Omit<Seq, 'keyDim' | 'valueDim'> & Partial<Seq>, out?: Float32Array): Float32Array {
    this.live();
    if (typeof seq !== 'object' || seq === null) {
      throw new OvqInputError('seq', `got ${String(seq)}; expected {q, k, v, seqLen}`);
    }
    if (seq.keyDim !== undefined && seq.keyDim !== this.keyDim) {
      throw new OvqInputError(
        'seq.keyDim',
        `got ${String(seq.keyDim)}; the stream was created with keyDim ${this.keyDim}`,
      );
    }
    if (seq.valueDim !== undefined && seq.valueDim !== this.valueDim) {
      throw new OvqInputError(
        'seq.valueDim',
        `got ${String(seq.valueDim)}; the stream was created with valueDim ${this.valueDim}`,
      );
    }
    const T = requireNonNegativeInteger('seq.seqLen', seq.seqLen);
    requireFiniteArray('seq.q', seq.q, T * this.keyDim, 'seqLen*keyDim');
    requireFiniteArray('seq.k', seq.k, T * this.keyDim, 'seqLen*keyDim');
    requireFiniteArray('seq.v', seq.v, T * this.valueDim, 'seqLen*valueDim');
    const output =
      out === undefined
        ? new Float32Array(T * this.valueDim)
        : checkOut(out, T * this.valueDim, 'out', 'seqLen*valueDim');
    this.run(seq, T, output);
    return output;
  }

  get state(): OvqState {
    return this.live().toState();
  }

  dispose(): void {
    this.ws = null;
    this.reader = null;
    this.scratch = new ReadScratch(1, 1, 1, 1);
  }
}

/** Copies one workspace's stream into a larger one (sums and counts exactly, then re-derives). */
function copyWorkspace(from: HeadWorkspace, to: HeadWorkspace): void {
  const { keyDim: dk, valueDim: dv, size } = from;
  to.reset(from.config);
  to.counts.set(from.counts.subarray(0, size));
  to.keyAcc.set(from.keyAcc.subarray(0, size * dk));
  to.valueAcc.set(from.valueAcc.subarray(0, size * dv));
  to.size = size;
  for (let i = 0; i < size; i++) to.refreshRow(i);
  to.pendKeys.set(from.pendKeys);
  to.pendValues.set(from.pendValues);
  to.pendingCount = from.pendingCount;
  for (let j = 0; j < from.pendingCount; j++) to.refreshPending(j);
  to.tokensSeen = from.tokensSeen;
  to.rngState = from.rngState;
}

/**
 * A decoding stream of one head on the fast Float32 path: `step` one token at a time (or
 * `append` a piece), with the dictionary kept between calls. Outputs equal `ovqAttention` over
 * the same tokens. With `options.state`, resumes that stream (only `capacity` may differ from
 * the state's config).
 */
export function createOvqStream(
  dims: { keyDim: number; valueDim: number },
  config: OvqConfig,
  options: OvqStreamOptions = {},
): OvqStream {
  if (typeof dims !== 'object' || dims === null) {
    throw new OvqInputError('dims', `got ${String(dims)}; expected {keyDim, valueDim}`);
  }
  const keyDim = requirePositiveInteger('dims.keyDim', dims.keyDim);
  const valueDim = requirePositiveInteger('dims.valueDim', dims.valueDim);
  const resolved = resolveOvqConfig(config);
  if (typeof options !== 'object' || options === null) {
    throw new OvqInputError('options', `got ${String(options)}; expected {state?}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'state') {
      throw new OvqInputError(`options.${key}`, 'unknown option; expected state');
    }
  }
  let init: OvqState | undefined;
  if (options.state !== undefined) {
    if (options.state instanceof OvqState) {
      for (const key of ['keyDim', 'valueDim'] as const) {
        if (options.state[key] !== dims[key]) {
          throw new OvqInputError(
            `dims.${key}`,
            `got ${dims[key]}; options.state has ${key} ${options.state[key]}`,
          );
        }
      }
    }
    init = checkContinuable(options.state, resolved, keyDim, valueDim, 'options.state');
  }
  return new Stream(keyDim, valueDim, resolved, init);
}
