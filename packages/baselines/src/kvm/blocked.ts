// Float32 fast path for Key-Value Means: the same engine in Float32 (rows only change at block
// ends, so a block of queries reads one row set); the backward keeps rows every ~√E evictions and
// replays the rest, so memory stays O(√E·rows·d) instead of O(E·rows·d).
import type { FloatArray, SeqInput } from '../common.js';
import {
  beginBackward,
  beginForward,
  checkFiniteArrays,
  checkOptions,
  checkOut,
} from '../validate.js';
import { type KvmGradients, runBackward, runForward } from './run.js';
import { type KvmConfig, type KvmState, kvmSpec } from './state.js';

/** Same function as `kvmAttention`, in Float32; `out` (if given) receives the output. */
export function kvmAttentionBlocked(
  seq: SeqInput,
  config: KvmConfig | undefined,
  options: { state?: KvmState; out?: Float32Array } = {},
): { output: Float32Array; state: KvmState } {
  const opts = checkOptions(options);
  const { base } = beginForward(kvmSpec, seq, config, opts.state, 'options.state', true);
  const out = checkOut(opts.out, seq.seqLen * seq.valueDim);
  const state = runForward(Float32Array, seq, base, out, true);
  checkFiniteArrays(
    'seq',
    { output: out, 'state.rowValues': state.rowValues, 'state.rowRadii': state.rowRadii },
    'Float32',
  );
  return { output: out, state };
}

/** Float32 gradients from an empty state (same definition as `kvmAttentionBackward`). */
export function kvmAttentionBlockedBackward(
  seq: SeqInput,
  config: KvmConfig,
  dOutput: FloatArray,
): KvmGradients<Float32Array> {
  const c = beginBackward(kvmSpec, seq, config, dOutput, true);
  const g = runBackward(Float32Array, seq, c, dOutput, (E) => Math.ceil(Math.sqrt(E)), true);
  checkFiniteArrays('seq', g, 'Float32');
  return g;
}
