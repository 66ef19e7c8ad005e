// Float64 reference for Key-Value Means: the engine run token by token in float64, every row
// version kept for the backward.
import type { FloatArray, SeqInput } from '../common.js';
import { beginBackward, beginForward, checkFiniteArrays } from '../validate.js';
import { type KvmGradients, runBackward, runForward } from './run.js';
import { checkKvmState, type KvmConfig, type KvmState, kvmSpec } from './state.js';

/**
 * One softmax per query over the sink tokens, the compressed rows (logit β q̂·K_i, value ρ_i U_i) and
 * the raw block sliding window; q̂, k̂ are unit vectors. See the README for the exact definition.
 */
export function kvmAttention(
  seq: SeqInput,
  config: KvmConfig | undefined,
  initialState?: KvmState,
): { output: Float64Array; state: KvmState } {
  const { base } = beginForward(kvmSpec, seq, config, initialState, 'initialState', false);
  const output = new Float64Array(seq.seqLen * seq.valueDim);
  const state = runForward(Float64Array, seq, base, output);
  checkFiniteArrays(
    'seq',
    { output, 'state.rowValues': state.rowValues, 'state.rowRadii': state.rowRadii },
    'float64',
  );
  return { output, state };
}

/** Streams `seq` into `state` (mutated only after every check passed); returns the outputs. */
export function kvmAppend(state: KvmState, seq: SeqInput): Float64Array {
  checkKvmState(state, 'state');
  const { output, state: next } = kvmAttention(seq, undefined, state);
  Object.assign(state, next);
  return output;
}

/** Exact float64 gradients from an empty state; row selections and merge winners are constants. */
export function kvmAttentionBackward(
  seq: SeqInput,
  config: KvmConfig,
  dOutput: FloatArray,
): KvmGradients<Float64Array> {
  const c = beginBackward(kvmSpec, seq, config, dOutput, false);
  const g = runBackward(Float64Array, seq, c, dOutput, () => 1);
  checkFiniteArrays('seq', g, 'float64');
  return g;
}
