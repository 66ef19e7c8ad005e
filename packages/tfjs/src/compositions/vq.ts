// Transformer-VQ attention as a composition of tfjs ops (the webgpu route). Not written yet.
import type { VqConfig } from '@ovq/baselines';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { noComposition } from './shared.js';

export function vqComposite(
  _q: Tensor,
  _k: Tensor,
  _v: Tensor,
  _codebook: Tensor,
  _config: VqConfig,
): Tensor4D {
  return noComposition('OvqVqAttention');
}
