// OVQ-attention on the host backends: each [batch, head] runs @ovq/core's chunked Float32 path
// (forward, and the reverse-scan backward that undoes absorbs instead of storing snapshots) with
// that head's β. The batched entry points of @ovq/core share one β across heads, hence the loop.
import { type OvqConfig, ovqAttention, ovqAttentionBackward } from '@ovq/core';
import type { HeadData, HostMixer } from './host-mixer.js';

/** OVQ config without β: β is a per-head tensor input of the op. */
export type OvqOpConfig = Omit<OvqConfig, 'beta'>;

function headConfig(head: HeadData, config: OvqOpConfig): OvqConfig {
  return { ...config, beta: head.extras[0][0] };
}

function seqOf(head: HeadData) {
  const { q, k, v, seqLen, keyDim, valueDim } = head;
  return { q, k, v, seqLen, keyDim, valueDim };
}

export const ovqMixer: HostMixer<OvqOpConfig> = {
  kernelName: 'OvqAttention',
  extras: [{ name: 'beta', kind: 'perHead' }],
  parseConfig: (json) => JSON.parse(json) as OvqOpConfig,
  forward: (head, config) => ovqAttention(seqOf(head), headConfig(head, config)).output,
  backward: (head, config, dOutput) => {
    const g = ovqAttentionBackward(seqOf(head), headConfig(head, config), dOutput);
    return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [[g.dbeta]] };
  },
};
