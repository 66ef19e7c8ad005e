// The OVQ implementation the recall and ablation suites run on: core's chunked path when it is
// exported and accepts the config, else the float64 reference. Which one ran is recorded.
import {
  createOvqState,
  type OvqConfig,
  type OvqState,
  ovqAppend,
  ovqAttentionReference,
  type Seq,
} from '@ovq/core';
import { optionalCoreExport } from '../registry/ovq.js';

type Chunked = (
  seq: Seq,
  config: OvqConfig,
  options?: { state?: OvqState },
) => { output: Float32Array; state: OvqState };

export type OvqEngine = {
  name: 'core-chunked' | 'core-reference';
  /** Streams `seq` from `state` (or an empty stream) and returns outputs and the continued state. */
  run(
    seq: Seq,
    config: OvqConfig,
    state?: OvqState,
  ): { output: ArrayLike<number>; state: OvqState };
};

const reference: OvqEngine = {
  name: 'core-reference',
  run(seq, config, state) {
    if (!state) return ovqAttentionReference(seq, config);
    const s = state.clone();
    return { output: ovqAppend(s, seq), state: s };
  },
};

export function ovqEngine(prefer: 'chunked' | 'reference' = 'chunked'): OvqEngine {
  const chunked = optionalCoreExport<Chunked>('ovqAttention');
  if (prefer === 'reference' || !chunked) return reference;
  return {
    name: 'core-chunked',
    run: (seq, config, state) => chunked(seq, config, state ? { state } : {}),
  };
}

/** Runs on `engine`, falling back to the reference when the engine rejects a config option. */
export function runOvq(
  engine: OvqEngine,
  seq: Seq,
  config: OvqConfig,
  state?: OvqState,
): { output: ArrayLike<number>; state: OvqState; engine: OvqEngine['name'] } {
  try {
    return { ...engine.run(seq, config, state), engine: engine.name };
  } catch (error) {
    if (engine === reference) throw error;
    return { ...reference.run(seq, config, state), engine: reference.name };
  }
}

export { createOvqState };
