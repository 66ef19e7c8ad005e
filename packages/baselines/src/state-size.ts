// One entry point for ALGORITHM.md §6: numbers a mixer holds after T tokens, by mixer name.
import type { Dims } from './common.js';
import { type DecayLinearConfig, decayLinearStateSize } from './decay-linear/state.js';
import { type GatedDeltaNetConfig, gatedDeltaNetStateSize } from './gated-deltanet/state.js';
import { type KvmConfig, kvmStateSize } from './kvm/state.js';
import { type LinearConfig, linearStateSize } from './linear/state.js';
import { type SoftmaxConfig, softmaxStateSize } from './softmax/state.js';
import { fail } from './validate.js';
import { type VqConfig, vqStateSize } from './vq/state.js';

/** Each mixer's name and the config its stateSize takes. */
export type MixerConfigs = {
  softmax: SoftmaxConfig | undefined;
  linear: LinearConfig | undefined;
  'decay-linear': DecayLinearConfig | undefined;
  'gated-deltanet': GatedDeltaNetConfig | undefined;
  vq: VqConfig;
  kvm: KvmConfig;
};

export type MixerName = keyof MixerConfigs;

export const MIXERS: readonly MixerName[] = [
  'softmax',
  'linear',
  'decay-linear',
  'gated-deltanet',
  'vq',
  'kvm',
];

/** Numbers held in memory after T tokens (one head), counted as in ALGORITHM.md §6. */
export function stateSize<M extends MixerName>(
  mixer: M,
  dims: Dims,
  config: MixerConfigs[M],
  T: number,
): number {
  const c = config as never;
  switch (mixer) {
    case 'softmax':
      return softmaxStateSize(dims, c, T);
    case 'linear':
      return linearStateSize(dims, c, T);
    case 'decay-linear':
      return decayLinearStateSize(dims, c, T);
    case 'gated-deltanet':
      return gatedDeltaNetStateSize(dims, c, T);
    case 'vq':
      return vqStateSize(dims, c, T);
    case 'kvm':
      return kvmStateSize(dims, c, T);
    default:
      return fail('mixer', mixer, `one of ${MIXERS.join(', ')}`);
  }
}
