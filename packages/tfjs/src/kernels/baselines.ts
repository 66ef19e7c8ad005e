// The baselines on the host backends: each [batch, head] runs the @ovq/baselines Float32 fast path
// (tiled / chunked / blocked) forward and its exact backward.
import {
  type DecayLinearConfig,
  decayLinearAttentionChunked,
  decayLinearAttentionChunkedBackward,
  type GatedDeltaNetConfig,
  gatedDeltaNetChunked,
  gatedDeltaNetChunkedBackward,
  type KvmConfig,
  kvmAttentionBlocked,
  kvmAttentionBlockedBackward,
  type LinearConfig,
  linearAttentionChunked,
  linearAttentionChunkedBackward,
  type SoftmaxConfig,
  softmaxAttentionTiled,
  softmaxAttentionTiledBackward,
  type VqConfig,
  vqAttentionBlocked,
  vqAttentionBlockedBackward,
} from '@ovq/baselines';
import type { HeadData, HostMixer } from './host-mixer.js';

function seqOf(head: HeadData) {
  const { q, k, v, seqLen, keyDim, valueDim } = head;
  return { q, k, v, seqLen, keyDim, valueDim };
}

const parse = <C>(json: string) => JSON.parse(json) as C;

export const softmaxMixer: HostMixer<SoftmaxConfig> = {
  kernelName: 'OvqSoftmaxAttention',
  extras: [],
  parseConfig: parse,
  forward: (head, config) => softmaxAttentionTiled(seqOf(head), config).output,
  backward: (head, config, dy) => ({
    ...softmaxAttentionTiledBackward(seqOf(head), config, dy),
    extras: [],
  }),
};

export const linearMixer: HostMixer<LinearConfig> = {
  kernelName: 'OvqLinearAttention',
  extras: [],
  parseConfig: parse,
  forward: (head, config) => linearAttentionChunked(seqOf(head), config).output,
  backward: (head, config, dy) => ({
    ...linearAttentionChunkedBackward(seqOf(head), config, dy),
    extras: [],
  }),
};

export const decayLinearMixer: HostMixer<DecayLinearConfig> = {
  kernelName: 'OvqDecayLinearAttention',
  extras: [{ name: 'decay', kind: 'perToken' }],
  parseConfig: parse,
  forward: (head, config) =>
    decayLinearAttentionChunked({ ...seqOf(head), decay: head.extras[0] }, config).output,
  backward: (head, config, dy) => {
    const g = decayLinearAttentionChunkedBackward(
      { ...seqOf(head), decay: head.extras[0] },
      config,
      dy,
    );
    return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dDecay] };
  },
};

export const gatedDeltaNetMixer: HostMixer<GatedDeltaNetConfig> = {
  kernelName: 'OvqGatedDeltaNet',
  extras: [
    { name: 'alpha', kind: 'perToken' },
    { name: 'beta', kind: 'perToken' },
  ],
  parseConfig: parse,
  forward: (head, config) =>
    gatedDeltaNetChunked({ ...seqOf(head), alpha: head.extras[0], beta: head.extras[1] }, config)
      .output,
  backward: (head, config, dy) => {
    const seq = { ...seqOf(head), alpha: head.extras[0], beta: head.extras[1] };
    const g = gatedDeltaNetChunkedBackward(seq, config, dy);
    return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dAlpha, g.dBeta] };
  },
};

export const vqMixer: HostMixer<VqConfig> = {
  kernelName: 'OvqVqAttention',
  extras: [{ name: 'codebook', kind: 'perHead' }],
  parseConfig: parse,
  forward: (head, config) =>
    vqAttentionBlocked({ ...seqOf(head), codebook: head.extras[0] }, config).output,
  backward: (head, config, dy) => {
    const g = vqAttentionBlockedBackward({ ...seqOf(head), codebook: head.extras[0] }, config, dy);
    return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dCodebook] };
  },
};

export const kvmMixer: HostMixer<KvmConfig> = {
  kernelName: 'OvqKvmAttention',
  extras: [],
  parseConfig: parse,
  forward: (head, config) => kvmAttentionBlocked(seqOf(head), config).output,
  backward: (head, config, dy) => ({
    ...kvmAttentionBlockedBackward(seqOf(head), config, dy),
    extras: [],
  }),
};
