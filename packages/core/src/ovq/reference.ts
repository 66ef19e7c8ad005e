// The ground truth: OVQ-attention as a per-token float64 loop (ALGORITHM.md §4). Every other
// implementation (chunked CPU, WGSL, tfjs) is tested against this file.

import { resolveInitialState } from '../chunked/forward.js';
import {
  OvqInputError,
  requireFiniteArray,
  requireNonNegativeInteger,
  resolveOvqConfig,
  validateSeq,
} from '../validate.js';
import { absorbPending } from './dictionary.js';
import { normalizeRow, readState } from './read.js';
import { OvqState, STORAGE, setOvqCapacity } from './state.js';
import type { AbsorbRecord, OvqConfig, OvqTrace, ResolvedOvqConfig, Seq } from './types.js';

export type OvqForwardOptions = {
  /**
   * Decisions to replay instead of computing them, one record per absorb (e.g. the trace of a
   * float32 implementation whose rounding flipped a near-tie). Everything else is recomputed.
   */
  replay?: OvqTrace;
  /**
   * Continue from this state (not modified; the continued stream is returned as `state`): its
   * dictionary, pending buffer and counters. Its config must match `config` except `capacity`,
   * which `config` sets. Default: an empty dictionary.
   */
  initialState?: OvqState;
};

/** A working copy of `options.initialState` under `config`, or an empty state. */
export function startState(
  options: OvqForwardOptions,
  config: ResolvedOvqConfig,
  keyDim: number,
  valueDim: number,
): OvqState {
  const init = resolveInitialState(options, config, keyDim, valueDim);
  if (!init) return new OvqState(keyDim, valueDim, config);
  const state = init.clone();
  setOvqCapacity(state, config.capacity);
  return state;
}

/** Hook called before each token is read: lets the backward pass snapshot chunk starts. */
type BeforeToken = (state: OvqState, t: number) => void;

/**
 * Streams `seqLen` tokens into `state`: append to the pending buffer, read, absorb when the buffer
 * holds a full chunk. Writes outputs [seqLen, valueDim] and pushes one record per absorb.
 */
export function streamTokens(
  view: OvqState,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  seqLen: number,
  trace: OvqTrace,
  replay?: OvqTrace,
  beforeToken?: BeforeToken,
): Float64Array {
  const state = view[STORAGE];
  const { keyDim, valueDim } = state;
  const { chunkSize, normalize } = state.config;
  const output = new Float64Array(seqLen * valueDim);
  const qHat = new Float64Array(keyDim);
  let weights = new Float64Array(16);
  for (let t = 0; t < seqLen; t++) {
    beforeToken?.(view, t);
    const slot = state.pendingCount;
    if (normalize) {
      normalizeRow(k, t * keyDim, keyDim, state.pendingKeys, slot * keyDim);
      normalizeRow(q, t * keyDim, keyDim, qHat, 0);
    } else {
      for (let d = 0; d < keyDim; d++) {
        state.pendingKeys[slot * keyDim + d] = k[t * keyDim + d];
        qHat[d] = q[t * keyDim + d];
      }
    }
    for (let d = 0; d < valueDim; d++)
      state.pendingValues[slot * valueDim + d] = v[t * valueDim + d];
    state.pendingCount = slot + 1;
    state.tokensSeen += 1;
    if (weights.length < state.size + state.pendingCount) {
      weights = new Float64Array(2 * (state.size + state.pendingCount));
    }
    readState(view, qHat, 0, output, t * valueDim, weights);
    if (state.pendingCount === chunkSize) {
      const record: AbsorbRecord | undefined = replay?.[trace.length];
      if (replay && !record) {
        throw new OvqInputError(
          'options.replay',
          `has ${replay.length} absorb records; the sequence needs more`,
        );
      }
      trace.push(absorbPending(view, record));
    }
  }
  return output;
}

/**
 * OVQ-attention over one head of one sequence (float64 reference), from an empty dictionary or,
 * with `options.initialState`, continuing that state.
 */
export function ovqAttentionReference(
  seq: Seq,
  config: OvqConfig,
  options: OvqForwardOptions = {},
): { output: Float64Array; state: OvqState; trace: OvqTrace } {
  const resolved = resolveOvqConfig(config);
  const { seqLen, keyDim, valueDim } = validateSeq(seq);
  const state = startState(options, resolved, keyDim, valueDim);
  const trace: OvqTrace = [];
  const output = streamTokens(state, seq.q, seq.k, seq.v, seqLen, trace, options.replay);
  return { output, state, trace };
}

/**
 * Continues a stream: processes `seq` after everything `state` has seen and returns its outputs.
 * On any error the state is left exactly as it was.
 */
export function ovqAppend(state: OvqState, seq: Omit<Seq, 'keyDim' | 'valueDim'>): Float64Array {
  if (!(state instanceof OvqState)) {
    throw new OvqInputError(
      'state',
      'expected an OvqState from createOvqState, ovqAttentionReference or deserializeOvqState',
    );
  }
  if (typeof seq !== 'object' || seq === null) {
    throw new OvqInputError('seq', `got ${String(seq)}; expected {q, k, v, seqLen}`);
  }
  if ('keyDim' in seq && (seq as Seq).keyDim !== state.keyDim) {
    throw new OvqInputError(
      'seq.keyDim',
      `got ${(seq as Seq).keyDim}; the state was created with keyDim ${state.keyDim}`,
    );
  }
  if ('valueDim' in seq && (seq as Seq).valueDim !== state.valueDim) {
    throw new OvqInputError(
      'seq.valueDim',
      `got ${(seq as Seq).valueDim}; the state was created with valueDim ${state.valueDim}`,
    );
  }
  const seqLen = requireNonNegativeInteger('seq.seqLen', seq.seqLen);
  requireFiniteArray('seq.q', seq.q, seqLen * state.keyDim, 'seqLen*keyDim');
  requireFiniteArray('seq.k', seq.k, seqLen * state.keyDim, 'seqLen*keyDim');
  requireFiniteArray('seq.v', seq.v, seqLen * state.valueDim, 'seqLen*valueDim');
  const work = state.clone();
  const output = streamTokens(work, seq.q, seq.k, seq.v, seqLen, []);
  state[STORAGE].assign(work[STORAGE]);
  return output;
}
