// Key-Value Means attention as a composition of tfjs ops (the webgpu route). Not written yet.
import type { KvmConfig } from '@ovq/baselines';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { noComposition } from './shared.js';

export function kvmComposite(_q: Tensor, _k: Tensor, _v: Tensor, _config: KvmConfig): Tensor4D {
  return noComposition('OvqKvmAttention');
}
