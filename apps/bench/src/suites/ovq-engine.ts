// The OVQ implementation the recall and ablation suites run on: core's fast Float32 path
// (`ovqAttention`), which takes every config option. No fallback: if it throws, the caller's row
// fails and says so — a silently substituted reference would hide a broken fast path.
import { type OvqConfig, type OvqState, ovqAttention, type Seq } from '@ovq/core';

export const OVQ_ENGINE = 'core-chunked (ovqAttention)';

/** Streams `seq` from `state` (or an empty stream); returns outputs and the continued state. */
export function runOvq(
  seq: Seq,
  config: OvqConfig,
  state?: OvqState,
): { output: Float32Array; state: OvqState } {
  const r = ovqAttention(seq, config, state ? { state } : {});
  return { output: r.output, state: r.state };
}
