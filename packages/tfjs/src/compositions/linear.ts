// Linear attention as a composition of tfjs ops (the webgpu route); tfjs autodiff gives its
// gradient. It materialises a [batch, heads, seqLen, seqLen] score matrix.
import type { LinearConfig } from '@ovq/baselines';
import {
  add,
  div,
  elu,
  matMul,
  mul,
  scalar,
  sum,
  type Tensor,
  type Tensor4D,
  tidy,
} from '@tensorflow/tfjs-core';
import { causalMask } from './shared.js';

export function linearComposite(q: Tensor, k: Tensor, v: Tensor, config: LinearConfig): Tensor4D {
  const T = q.shape[2] as number;
  const eps = config.eps ?? 1e-6;
  return tidy(() => {
    const phi = (x: Tensor) => add(elu(x), scalar(1));
    const a = mul(matMul(phi(q), phi(k), false, true), causalMask(T, T));
    return div(matMul(a, v), add(sum(a, -1, true), scalar(eps))) as Tensor4D;
  });
}
