// The batched multi-head form of the chunked path. Layout (row-major, like the usual attention
// tensors): q, k [batch, heads, seqLen, keyDim]; v and output [batch, heads, seqLen, valueDim];
// head (b, h) is independent and its state/trace is entry b·heads + h. One workspace is reused by
// every head, so working memory is that of a single head.
import type { OvqState } from '../ovq/state.js';
import type { OvqConfig, OvqTrace } from '../ovq/types.js';
import {
  OvqInputError,
  requireFiniteArray,
  requireNonNegativeInteger,
  requirePositiveInteger,
  resolveOvqConfig,
} from '../validate.js';
import { BackwardScratch, backwardHead } from './backward.js';
import {
  checkContinuable,
  checkOut,
  createTape,
  forwardHead,
  rowsNeeded,
  traceFromTape,
} from './forward.js';
import { HeadWorkspace } from './head.js';
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

export type BatchedForwardOptions = {
  /** Streams to continue, one per head (index b·heads + h); not modified. */
  states?: OvqState[];
  /** Preallocated output [batch, heads, seqLen, valueDim]; every element is written. */
  out?: Float32Array;
};

export type BatchedBackwardOptions = {
  out?: { dq?: Float32Array; dk?: Float32Array; dv?: Float32Array };
};

type BatchedDims = { heads: number; T: number; dk: number; dv: number };

function validateBatched(input: BatchedSeq): BatchedDims {
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
  requireFiniteArray('input.q', input.q, batch * heads * T * dk, `${shape}*keyDim`);
  requireFiniteArray('input.k', input.k, batch * heads * T * dk, `${shape}*keyDim`);
  requireFiniteArray('input.v', input.v, batch * heads * T * dv, `${shape}*valueDim`);
  return { heads: batch * heads, T, dk, dv };
}

/**
 * OVQ-attention over every head of a batch on the chunked Float32 path: the same result as
 * calling `ovqAttention` on each head, with states/traces indexed b·heads + h.
 */
export function ovqAttentionBatched(
  input: BatchedSeq,
  config: OvqConfig,
  options: BatchedForwardOptions = {},
): { output: Float32Array; states: OvqState[]; traces: OvqTrace[] } {
  const resolved = resolveOvqConfig(config);
  const { heads, T, dk, dv } = validateBatched(input);
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
    const state = init
      ? checkContinuable(init[h], resolved, dk, dv, `options.states[${h}]`)
      : undefined;
    rowsCap = Math.max(rowsCap, rowsNeeded(resolved, T, state));
  }
  const C = resolved.chunkSize;
  const ws = new HeadWorkspace(dk, dv, resolved, rowsCap);
  const scratch = new ReadScratch(C, rowsCap, dk, dv);
  const states: OvqState[] = [];
  const traces: OvqTrace[] = [];
  for (let h = 0; h < heads; h++) {
    if (init) ws.load(init[h], resolved);
    else ws.reset(resolved);
    const tape = createTape(Math.floor((ws.pendingCount + T) / C), C);
    forwardHead(ws, scratch, input, h * T * dk, h * T * dv, T, output, h * T * dv, tape);
    states.push(ws.toState());
    traces.push(traceFromTape(tape, C));
  }
  return { output, states, traces };
}

/**
 * Gradients of L = Σ dOutput ⊙ output for `ovqAttentionBatched(input, config)` (empty initial
 * states). β is shared by all heads: `dbeta` is the total, `dbetaPerHead` its split.
 */
export function ovqAttentionBatchedBackward(
  input: BatchedSeq,
  config: OvqConfig,
  dOutput: ArrayLike<number>,
  options: BatchedBackwardOptions = {},
): {
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  dbeta: number;
  dbetaPerHead: Float64Array;
  traces: OvqTrace[];
} {
  const resolved = resolveOvqConfig(config);
  const { heads, T, dk, dv } = validateBatched(input);
  requireFiniteArray('dOutput', dOutput, heads * T * dv, 'batch*heads*seqLen*valueDim');
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
  const rowsCap = rowsNeeded(resolved, T);
  const ws = new HeadWorkspace(dk, dv, resolved, rowsCap);
  const scratch = new BackwardScratch(C, rowsCap, dk, dv);
  const dbetaPerHead = new Float64Array(heads);
  const traces: OvqTrace[] = [];
  for (let h = 0; h < heads; h++) {
    ws.reset(resolved);
    const tape = createTape(Math.floor(T / C), C);
    dbetaPerHead[h] = backwardHead(
      ws,
      scratch,
      input,
      dOutput,
      h * T * dk,
      h * T * dv,
      T,
      grads,
      tape,
    );
    traces.push(traceFromTape(tape, C));
  }
  let dbeta = 0;
  for (let h = 0; h < heads; h++) dbeta += dbetaPerHead[h];
  return { ...grads, dbeta, dbetaPerHead, traces };
}
