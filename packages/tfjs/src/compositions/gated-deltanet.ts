// Gated DeltaNet as a composition of tfjs ops (the webgpu route). Not written yet.
import type { GatedDeltaNetConfig } from '@ovq/baselines';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { noComposition } from './shared.js';

export function gatedDeltaNetComposite(
  _q: Tensor,
  _k: Tensor,
  _v: Tensor,
  _alpha: Tensor,
  _beta: Tensor,
  _config: GatedDeltaNetConfig,
): Tensor4D {
  return noComposition('OvqGatedDeltaNet');
}
