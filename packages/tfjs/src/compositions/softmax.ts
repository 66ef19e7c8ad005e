// Softmax / sliding-window attention as a composition of tfjs ops (the webgpu route): it runs on
// the backend's own device and tfjs autodiff gives its gradient. It materialises a
// [batch, heads, seqLen, seqLen] score matrix.
import { resolveSoftmaxConfig, type SoftmaxConfig } from '@ovq/baselines';
import {
  cast,
  matMul,
  mul,
  scalar,
  softmax,
  type Tensor,
  type Tensor4D,
  tidy,
  where,
} from '@tensorflow/tfjs-core';
import { causalMask, l2Normalize, rope } from './shared.js';

export function softmaxComposite(q: Tensor, k: Tensor, v: Tensor, config: SoftmaxConfig): Tensor4D {
  const T = q.shape[2] as number;
  const c = resolveSoftmaxConfig(config, q.shape[3] as number);
  return tidy(() => {
    let qp = c.normalize ? l2Normalize(q) : q;
    let kp = c.normalize ? l2Normalize(k) : k;
    if (c.rope) {
      qp = rope(qp, c.rope.base);
      kp = rope(kp, c.rope.base);
    }
    const mask = causalMask(T, c.window ?? T);
    const scores = mul(matMul(qp, kp, false, true), scalar(c.beta));
    const masked = where(cast(mask, 'bool'), scores, scalar(Number.NEGATIVE_INFINITY));
    return matMul(softmax(masked), v) as Tensor4D;
  });
}
