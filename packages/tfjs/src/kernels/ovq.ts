// OVQ-attention on the host backends: @ovq/core's batched chunked Float32 path (forward, and the
// reverse-scan backward that undoes absorbs instead of storing snapshots) over every [batch, head]
// in one call, with per-head β as a Float32Array (no per-head JS loop) and the heads on the host
// worker pool when one is set (setHostWorkerPool). The per-head entry points remain for
// callers of HostMixer that run one head.
import {
  type OvqConfig,
  ovqAttention,
  ovqAttentionBackward,
  ovqAttentionBatched,
  ovqAttentionBatchedBackward,
} from '@ovq/core';
import { hostWorkerPool } from '../parallel/pool.js';
import type { BatchedInputs, HeadData, HostMixer } from './host-mixer.js';

/** OVQ config without β: β is a per-head tensor input of the op. */
export type OvqOpConfig = Omit<OvqConfig, 'beta'>;

function headConfig(head: HeadData, config: OvqOpConfig): OvqConfig {
  return { ...config, beta: head.extras[0][0] };
}

function seqOf(head: HeadData) {
  const { q, k, v, seqLen, keyDim, valueDim } = head;
  return { q, k, v, seqLen, keyDim, valueDim };
}

function batchedSeq(x: BatchedInputs) {
  const { q, k, v, batch, heads, seqLen, keyDim, valueDim } = x;
  return { q, k, v, batch, heads, seqLen, keyDim, valueDim };
}

const poolOption = () => {
  const pool = hostWorkerPool();
  return pool === null ? {} : { pool };
};

export const ovqMixer: HostMixer<OvqOpConfig> = {
  kernelName: 'OvqAttention',
  extras: [{ name: 'beta', kind: 'perHead' }],
  parseConfig: (json) => JSON.parse(json) as OvqOpConfig,
  forward: (head, config) => ovqAttention(seqOf(head), headConfig(head, config)).output,
  backward: (head, config, dOutput) => {
    const g = ovqAttentionBackward(seqOf(head), headConfig(head, config), dOutput);
    return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [[g.dbeta]] };
  },
  forwardBatched: (x, config) =>
    ovqAttentionBatched(batchedSeq(x), { ...config, beta: x.extras[0] }, poolOption()).output,
  backwardBatched: (x, config, dOutput) => {
    const g = ovqAttentionBatchedBackward(
      batchedSeq(x),
      { ...config, beta: x.extras[0] },
      dOutput,
      poolOption(),
    );
    // dβ per head, summed over the batch in a fixed order by @ovq/core.
    return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [Float32Array.from(g.dbetaConfig)] };
  },
};
