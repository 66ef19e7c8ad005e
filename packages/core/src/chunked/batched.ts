// The batched multi-head form of the chunked path. Layout (row-major, like the usual attention
// tensors): q, k [batch, heads, seqLen, keyDim]; v and output [batch, heads, seqLen, valueDim];
// head (b, h) is independent and its state/trace is entry b·heads + h. β may differ per head.
//
// Every head is computed by `runBatchedHeads`, on this thread (one workspace reused by every head,
// so working memory is that of a single head) or, with `options.pool`, on the pool's workers
// (src/parallel/): each head wholly by one worker running the same code, so results are bit for
// bit the same for every pool size and without a pool.

import type { OvqState } from '../ovq/state.js';
import type { OvqConfig, OvqTrace, ResolvedOvqConfig } from '../ovq/types.js';
import { type OvqWorkerPool, runOnPool } from '../parallel/pool.js';
import { rowsOfState } from '../parallel/state-rows.js';
import {
  OvqInputError,
  requireFiniteArray,
  requireNonNegativeInteger,
  requirePositiveInteger,
  resolveOvqConfig,
} from '../validate.js';
import { BackwardScratch, backwardHead } from './backward.js';
import {
  type AbsorbTape,
  checkContinuable,
  checkOut,
  forwardHead,
  rowsNeeded,
  traceFromTape,
} from './forward.js';
import { HeadWorkspace, type StateRows } from './head.js';
import { ReadScratch } from './read.js';

/** Inputs of the batched form: [batch, heads, seqLen, dim] row-major arrays and their shape. */
export type BatchedSeq = {
  q: Float32Array | Float64Array;
  k: Float32Array | Float64Array;
  v: Float32Array | Float64Array;
  batch: number;
  heads: number;
  seqLen: number;
  keyDim: number;
  valueDim: number;
};

/**
 * The batched config: an OvqConfig whose β is one number for every head, or a Float32Array of
 * `heads` values (β[h], shared by the batch) or of `batch·heads` values (β[b·heads + h]).
 */
export type BatchedOvqConfig = Omit<OvqConfig, 'beta'> & { beta: number | Float32Array };

export type BatchedForwardOptions = {
  /** Streams to continue, one per head (index b·heads + h); not modified. */
  states?: OvqState[];
  /** Preallocated output [batch, heads, seqLen, valueDim]; every element is written. */
  out?: Float32Array;
  /** Run the heads on this pool's workers (createOvqWorkerPool); same results, bit for bit. */
  pool?: OvqWorkerPool;
};

export type BatchedBackwardOptions = {
  out?: { dq?: Float32Array; dk?: Float32Array; dv?: Float32Array };
  /** Run the heads on this pool's workers (createOvqWorkerPool); same results, bit for bit. */
  pool?: OvqWorkerPool;
};

export type BatchedGradients = {
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  /** ∂L/∂β summed over every head (the gradient of a β shared by all heads). */
  dbeta: number;
  /** ∂L/∂β of each head, [batch·heads]. */
  dbetaPerHead: Float64Array;
  /** ∂L/∂config.beta in its shape: 1 value for a number, else one per entry of the Float32Array. */
  dbetaConfig: Float64Array;
  traces: OvqTrace[];
};

type BatchedDims = { heads: number; T: number; dk: number; dv: number };

/**
 * Checks the shape and the arrays of `input`. With `values` false the typed arrays' elements are
 * not scanned for non-finite values (a pool's workers scan them in parallel; see runOnPool).
 */
function validateBatched(input: BatchedSeq, values = true): BatchedDims {
  if (typeof input !== 'object' || input === null) {
    throw new OvqInputError(
      'input',
      `got ${String(input)}; expected {q, k, v, batch, heads, seqLen, keyDim, valueDim}`,
    );
  }
  const batch = requirePositiveInteger('input.batch', input.batch);
  const heads = requirePositiveInteger('input.heads', input.heads);
  const T = requireNonNegativeInteger('input.seqLen', input.seqLen);
  const dk = requirePositiveInteger('input.keyDim', input.keyDim);
  const dv = requirePositiveInteger('input.valueDim', input.valueDim);
  const shape = 'batch*heads*seqLen';
  const check = values ? requireFiniteArray : requireTypedLength;
  check('input.q', input.q, batch * heads * T * dk, `${shape}*keyDim`);
  check('input.k', input.k, batch * heads * T * dk, `${shape}*keyDim`);
  check('input.v', input.v, batch * heads * T * dv, `${shape}*valueDim`);
  return { heads: batch * heads, T, dk, dv };
}

/**
 * requireFiniteArray without the scan of the values, for Float32/Float64 arrays only: anything
 * else (a plain array may hold non-numbers) gets the full check here.
 */
function requireTypedLength(
  argument: string,
  array: unknown,
  expected: number,
  shape: string,
): ArrayLike<number> {
  if (!(array instanceof Float32Array || array instanceof Float64Array)) {
    return requireFiniteArray(argument, array, expected, shape);
  }
  if (array.length !== expected) {
    throw new OvqInputError(
      argument,
      `has ${array.length} values; expected ${shape} = ${expected}`,
    );
  }
  return array;
}

/** Whether the pool's workers may scan the values: Float32/Float64 arrays only. */
function isTypedInput(input: BatchedSeq, dOutput: ArrayLike<number> | null): boolean {
  const typed = (x: unknown) => x instanceof Float32Array || x instanceof Float64Array;
  return typed(input.q) && typed(input.k) && typed(input.v) && (dOutput === null || typed(dOutput));
}

/** Resolves the config and β of every head (b·heads + h). */
function resolveBatchedConfig(
  config: BatchedOvqConfig,
  input: BatchedSeq,
): { resolved: ResolvedOvqConfig; betas: Float64Array } {
  const beta = (config as { beta?: unknown } | null)?.beta;
  if (!(beta instanceof Float32Array)) {
    const resolved = resolveOvqConfig(config as OvqConfig);
    return { resolved, betas: new Float64Array(input.batch * input.heads).fill(resolved.beta) };
  }
  const { batch, heads } = input;
  if (beta.length !== heads && beta.length !== batch * heads) {
    throw new OvqInputError(
      'config.beta',
      `has ${beta.length} values; expected a number or a Float32Array of heads = ${heads} or batch*heads = ${batch * heads} values`,
    );
  }
  for (let i = 0; i < beta.length; i++) {
    if (!Number.isFinite(beta[i]) || beta[i] <= 0) {
      throw new OvqInputError(
        'config.beta',
        `value at index ${i} is ${beta[i]}; expected finite numbers > 0`,
      );
    }
  }
  const resolved = resolveOvqConfig({ ...config, beta: beta[0] });
  const betas = new Float64Array(batch * heads);
  for (let bh = 0; bh < batch * heads; bh++) {
    betas[bh] = beta.length === heads ? beta[bh % heads] : beta[bh];
  }
  return { resolved, betas };
}

/** Where a head's initial state comes from and where its final state goes (thread or worker). */
export type HeadStates = {
  load(h: number): StateRows | undefined;
  store(h: number, ws: HeadWorkspace): void;
};

/**
 * The workspace and scratch a pool worker keeps between calls: reused while the dims and chunk
 * size match and its rows suffice, replaced (grown) when a call needs more. Reuse is as safe as
 * reusing one workspace for the next head of a call, which every call does: a head starts from
 * reset() or loadRows(). Dropped after a failed head (its scratch may be half-written).
 */
export class WorkspaceCache {
  private ws: HeadWorkspace | null = null;
  private read: ReadScratch | null = null;
  private back: BackwardScratch | null = null;

  /** A workspace and scratch for `job` (dims, chunk size, at least job.rowsCap rows). */
  take(job: BatchedJob): { ws: HeadWorkspace; scratch: ReadScratch } {
    const { config, dk, dv, rowsCap } = job;
    const C = config.chunkSize;
    let ws = this.ws;
    if (
      ws === null ||
      ws.keyDim !== dk ||
      ws.valueDim !== dv ||
      ws.chunkSize !== C ||
      ws.rowsCap < rowsCap
    ) {
      ws = new HeadWorkspace(dk, dv, config, rowsCap);
      this.ws = ws;
      this.read = null;
      this.back = null;
    }
    if (job.kind === 'forward') {
      this.read ??= new ReadScratch(C, ws.rowsCap, dk, dv);
      return { ws, scratch: this.read };
    }
    this.back ??= new BackwardScratch(C, ws.rowsCap, dk, dv);
    return { ws, scratch: this.back };
  }

  clear(): void {
    this.ws = null;
    this.read = null;
    this.back = null;
  }
}

/**
 * One batched call, as plain data: what `runBatchedHeads` needs on this thread or in a worker.
 * Tapes: head h's absorb a is codes[(h·absorbsCap + a)·C …], sizeBefore[h·absorbsCap + a];
 * absorbs[h] absorbs were made.
 */
export type BatchedJob = {
  kind: 'forward' | 'backward';
  config: ResolvedOvqConfig;
  betas: Float64Array;
  heads: number;
  T: number;
  dk: number;
  dv: number;
  rowsCap: number;
  absorbsCap: number;
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  /** Forward: output [heads, T, dv]. */
  out: Float32Array | null;
  /** Backward: dOutput and the gradients. */
  dOutput: ArrayLike<number> | null;
  dq: Float32Array | null;
  dkOut: Float32Array | null;
  dvOut: Float32Array | null;
  dbeta: Float64Array | null;
  codes: Int32Array;
  sizeBefore: Int32Array;
  absorbs: Int32Array;
};

/**
 * Runs heads `next()`, `next()`, … (until it returns −1) of a job with one workspace (from
 * `cache` when given, else new). The single code path for every head, on this thread and in pool
 * workers, which makes pool sizes agree (a workspace with more rows than needed gives the same
 * bits: row capacity sets strides, never the order of a sum).
 */
export function runBatchedHeads(
  job: BatchedJob,
  states: HeadStates,
  next: () => number,
  cache?: WorkspaceCache,
): void {
  const { config, T, dk, dv, rowsCap, absorbsCap } = job;
  const C = config.chunkSize;
  const forward = job.kind === 'forward';
  const { ws, scratch } =
    cache?.take(job) ??
    (() => {
      const fresh = new HeadWorkspace(dk, dv, config, rowsCap);
      const s = forward
        ? new ReadScratch(C, rowsCap, dk, dv)
        : new BackwardScratch(C, rowsCap, dk, dv);
      return { ws: fresh, scratch: s };
    })();
  const seq = { q: job.q, k: job.k, v: job.v };
  for (let h = next(); h >= 0; h = next()) {
    const cfg = job.betas[h] === config.beta ? config : { ...config, beta: job.betas[h] };
    const init = forward ? states.load(h) : undefined;
    if (init) ws.loadRows(init, cfg);
    else ws.reset(cfg);
    const absorbs = Math.floor(((forward ? ws.pendingCount : 0) + T) / C);
    job.absorbs[h] = absorbs;
    const tape: AbsorbTape = {
      codes: job.codes.subarray(h * absorbsCap * C, (h * absorbsCap + absorbs) * C),
      sizeBefore: job.sizeBefore.subarray(h * absorbsCap, h * absorbsCap + absorbs),
    };
    if (forward) {
      forwardHead(ws, scratch, seq, h * T * dk, h * T * dv, T, job.out!, h * T * dv, tape);
      states.store(h, ws);
    } else {
      const grads = { dq: job.dq!, dk: job.dkOut!, dv: job.dvOut! };
      const d = backwardHead(
        ws,
        scratch as BackwardScratch,
        seq,
        job.dOutput!,
        h * T * dk,
        h * T * dv,
        T,
        grads,
        tape,
      );
      job.dbeta![h] = d;
    }
  }
}

/**
 * The error for a non-finite value that a pool's workers found: the same OvqInputError (first
 * bad value, same wording) as the scan on this thread gives without a pool.
 */
function rejectValues(input: BatchedSeq, dOutput: ArrayLike<number> | null): Error {
  const { heads, T, dv } = validateBatched(input);
  if (dOutput !== null) {
    requireFiniteArray('dOutput', dOutput, heads * T * dv, 'batch*heads*seqLen*valueDim');
  }
  return new Error('@ovq/core worker pool: a worker reported a non-finite input value');
}

/** Head traces from a finished job's tapes. */
function tracesOf(job: BatchedJob): OvqTrace[] {
  const C = job.config.chunkSize;
  const traces: OvqTrace[] = [];
  for (let h = 0; h < job.heads; h++) {
    const at = h * job.absorbsCap;
    const n = job.absorbs[h];
    traces.push(
      traceFromTape(
        {
          codes: job.codes.subarray(at * C, (at + n) * C),
          sizeBefore: job.sizeBefore.subarray(at, at + n),
        },
        C,
      ),
    );
  }
  return traces;
}

/** Runs a job on this thread, heads in order. */
function runHere(job: BatchedJob, states: HeadStates): void {
  let h = 0;
  runBatchedHeads(job, states, () => (h < job.heads ? h++ : -1));
}

/**
 * OVQ-attention over every head of a batch on the chunked Float32 path: the same result as
 * calling `ovqAttention` on each head (with that head's β), states/traces indexed b·heads + h.
 */
export function ovqAttentionBatched(
  input: BatchedSeq,
  config: BatchedOvqConfig,
  options: BatchedForwardOptions = {},
): { output: Float32Array; states: OvqState[]; traces: OvqTrace[] } {
  const scanOnPool = options.pool !== undefined && isTypedInput(input, null);
  const { heads, T, dk, dv } = validateBatched(input, !scanOnPool);
  const { resolved, betas } = resolveBatchedConfig(config, input);
  const output =
    options.out === undefined
      ? new Float32Array(heads * T * dv)
      : checkOut(options.out, heads * T * dv, 'options.out', 'batch*heads*seqLen*valueDim');
  const init = options.states;
  if (init !== undefined && (!Array.isArray(init) || init.length !== heads)) {
    throw new OvqInputError(
      'options.states',
      `got ${Array.isArray(init) ? `${init.length} states` : typeof init}; expected an array of batch*heads = ${heads} OvqStates`,
    );
  }
  let rowsCap = 1;
  for (let h = 0; h < heads; h++) {
    const cfg = { ...resolved, beta: betas[h] };
    const state = init ? checkContinuable(init[h], cfg, dk, dv, `options.states[${h}]`) : undefined;
    rowsCap = Math.max(rowsCap, rowsNeeded(cfg, T, state));
  }
  const C = resolved.chunkSize;
  const absorbsCap = Math.floor((C - 1 + T) / C);
  const job: BatchedJob = {
    kind: 'forward',
    config: resolved,
    betas,
    heads,
    T,
    dk,
    dv,
    rowsCap,
    absorbsCap,
    q: input.q,
    k: input.k,
    v: input.v,
    out: output,
    dOutput: null,
    dq: null,
    dkOut: null,
    dvOut: null,
    dbeta: null,
    codes: new Int32Array(heads * absorbsCap * C),
    sizeBefore: new Int32Array(heads * absorbsCap),
    absorbs: new Int32Array(heads),
  };
  let states: OvqState[] = new Array(heads);
  if (options.pool !== undefined) {
    const result = runOnPool(options.pool, 'options.pool', job, init, scanOnPool);
    if (result === null) throw rejectValues(input, null);
    states = result;
  } else {
    const load = (h: number) => (init ? rowsOfState(init[h]) : undefined);
    runHere(job, { load, store: (h, ws) => (states[h] = ws.toState()) });
  }
  return { output, states, traces: tracesOf(job) };
}

/**
 * Gradients of L = Σ dOutput ⊙ output for `ovqAttentionBatched(input, config)` (empty initial
 * states): `dbetaPerHead` per head, `dbetaConfig` in config.beta's shape, `dbeta` their total.
 */
export function ovqAttentionBatchedBackward(
  input: BatchedSeq,
  config: BatchedOvqConfig,
  dOutput: ArrayLike<number>,
  options: BatchedBackwardOptions = {},
): BatchedGradients {
  const scanOnPool = options.pool !== undefined && isTypedInput(input, dOutput);
  const { heads, T, dk, dv } = validateBatched(input, !scanOnPool);
  const { resolved, betas } = resolveBatchedConfig(config, input);
  const check = scanOnPool ? requireTypedLength : requireFiniteArray;
  check('dOutput', dOutput, heads * T * dv, 'batch*heads*seqLen*valueDim');
  const out = options.out ?? {};
  const nk = heads * T * dk;
  const nv = heads * T * dv;
  const grads = {
    dq:
      out.dq === undefined
        ? new Float32Array(nk)
        : checkOut(out.dq, nk, 'options.out.dq', 'batch*heads*seqLen*keyDim'),
    dk:
      out.dk === undefined
        ? new Float32Array(nk)
        : checkOut(out.dk, nk, 'options.out.dk', 'batch*heads*seqLen*keyDim'),
    dv:
      out.dv === undefined
        ? new Float32Array(nv)
        : checkOut(out.dv, nv, 'options.out.dv', 'batch*heads*seqLen*valueDim'),
  };
  const C = resolved.chunkSize;
  const absorbsCap = Math.floor(T / C);
  const dbetaPerHead = new Float64Array(heads);
  const job: BatchedJob = {
    kind: 'backward',
    config: resolved,
    betas,
    heads,
    T,
    dk,
    dv,
    rowsCap: rowsNeeded(resolved, T),
    absorbsCap,
    q: input.q,
    k: input.k,
    v: input.v,
    out: null,
    dOutput,
    dq: grads.dq,
    dkOut: grads.dk,
    dvOut: grads.dv,
    dbeta: dbetaPerHead,
    codes: new Int32Array(heads * absorbsCap * C),
    sizeBefore: new Int32Array(heads * absorbsCap),
    absorbs: new Int32Array(heads),
  };
  const noStates: HeadStates = { load: () => undefined, store: () => {} };
  if (options.pool !== undefined) {
    const result = runOnPool(options.pool, 'options.pool', job, undefined, scanOnPool);
    if (result === null) throw rejectValues(input, dOutput);
  } else runHere(job, noStates);
  let dbeta = 0;
  for (let h = 0; h < heads; h++) dbeta += dbetaPerHead[h];
  const beta = config.beta;
  const width = beta instanceof Float32Array ? beta.length : 1;
  const dbetaConfig = new Float64Array(width);
  for (let h = 0; h < heads; h++) dbetaConfig[h % width] += dbetaPerHead[h];
  return { ...grads, dbeta, dbetaPerHead, dbetaConfig, traces: tracesOf(job) };
}
