// Float32 fast path for Key-Value Means: the same engine in Float32 (rows only change at block
// ends, so a block of queries reads one row set); the backward keeps rows every ~√E evictions and
// replays the rest, so memory stays O(√E·rows·d) instead of O(E·rows·d).
import type { FloatArray, SeqInput } from '../common.js';
import { checkDOutput, checkOut, checkSameConfig, checkSeq, checkState } from '../validate.js';
import { type KvmGradients, runBackward, runForward } from './run.js';
import { createKvmState, type KvmConfig, type KvmState, resolveKvmConfig } from './state.js';

/** Same function as `kvmAttention`, in Float32; `out` (if given) receives the output. */
export function kvmAttentionBlocked(
  seq: SeqInput,
  config: KvmConfig | undefined,
  options: { state?: KvmState; out?: Float32Array } = {},
): { output: Float32Array; state: KvmState } {
  const initial = options.state;
  checkSeq(seq, initial);
  if (initial) {
    checkState(initial, 'kvm');
    if (config !== undefined) checkSameConfig(initial.config, resolveKvmConfig(config));
  }
  const base = initial ?? createKvmState(seq, config as KvmConfig);
  const out = checkOut(options.out, seq.seqLen * seq.valueDim);
  return { output: out, state: runForward(Float32Array, seq, base, out) };
}

/** Float32 gradients from an empty state (same definition as `kvmAttentionBackward`). */
export function kvmAttentionBlockedBackward(
  seq: SeqInput,
  config: KvmConfig,
  dOutput: FloatArray,
): KvmGradients<Float32Array> {
  checkSeq(seq);
  checkDOutput(dOutput, seq.seqLen, seq.valueDim);
  return runBackward(Float32Array, seq, resolveKvmConfig(config), dOutput, (E) =>
    Math.ceil(Math.sqrt(E)),
  );
}
