// Decay linear attention (Mamba2/SSD) as a composition of tfjs ops (the webgpu route); tfjs
// autodiff gives its gradient. It materialises a [batch, heads, seqLen, seqLen] weight matrix.
import type { DecayLinearConfig } from '@ovq/baselines';
import {
  cast,
  cumsum,
  exp,
  expandDims,
  log,
  matMul,
  mul,
  scalar,
  sub,
  type Tensor,
  type Tensor4D,
  tidy,
  where,
} from '@tensorflow/tfjs-core';
import { causalMask } from './shared.js';

export function decayLinearComposite(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  decay: Tensor,
  config: DecayLinearConfig,
): Tensor4D {
  const T = q.shape[2] as number;
  const scale = config.scale ?? 1;
  return tidy(() => {
    // Π_{s<j≤t} a_j = exp(L_t − L_s) with L = cumsum(ln a); entries s > t are set to −∞ before
    // the exp so that they neither overflow nor pass a gradient.
    const L = cumsum(log(decay), 2);
    const diff = sub(expandDims(L, 3), expandDims(L, 2));
    const mask = cast(causalMask(T, T), 'bool');
    const weights = exp(where(mask, diff, scalar(Number.NEGATIVE_INFINITY)));
    const scores = mul(matMul(q, k, false, true), weights);
    return mul(matMul(scores, v), scalar(scale)) as Tensor4D;
  });
}
