// Softmax / sliding-window, linear and decay-linear attention as compositions of tfjs ops, for
// backends without host kernels (webgpu): they run on the backend's own device and tfjs autodiff
// gives their gradients. They materialise a [batch, heads, seqLen, seqLen] score matrix, which is
// what a GPU attention layer at training lengths does anyway; the host kernels do not.
import {
  type DecayLinearConfig,
  type LinearConfig,
  resolveSoftmaxConfig,
  type SoftmaxConfig,
} from '@ovq/baselines';
import {
  add,
  cast,
  cumsum,
  div,
  elu,
  exp,
  expandDims,
  log,
  matMul,
  maximum,
  mul,
  reshape,
  rsqrt,
  scalar,
  softmax,
  square,
  stack,
  sub,
  sum,
  type Tensor,
  type Tensor4D,
  tensor2d,
  tidy,
  unstack,
  where,
} from '@tensorflow/tfjs-core';

/** x / max(‖x‖, 1e-12) over the last axis, written so that its gradient is finite at x = 0. */
export function l2Normalize(x: Tensor): Tensor {
  return mul(x, rsqrt(maximum(sum(square(x), -1, true), scalar(1e-24))));
}

/** [T, T] mask: key s is visible to query t when t − window < s ≤ t. */
function causalMask(seqLen: number, window: number): Tensor {
  const m = new Float32Array(seqLen * seqLen);
  for (let t = 0; t < seqLen; t++) {
    for (let s = Math.max(0, t - window + 1); s <= t; s++) m[t * seqLen + s] = 1;
  }
  return tensor2d(m, [seqLen, seqLen]);
}

/** Rotary embedding on interleaved pairs (x[2i], x[2i+1]) at positions 0…T−1, as @ovq/baselines. */
function rope(x: Tensor, base: number): Tensor {
  const [B, H, T, d] = x.shape as number[];
  const half = d / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const theta = t * base ** ((-2 * i) / d);
      cos[t * half + i] = Math.cos(theta);
      sin[t * half + i] = Math.sin(theta);
    }
  }
  const c = tensor2d(cos, [T, half]);
  const s = tensor2d(sin, [T, half]);
  const [a, b] = unstack(reshape(x, [B, H, T, half, 2]), 4);
  const rotated = stack([sub(mul(a, c), mul(b, s)), add(mul(a, s), mul(b, c))], 4);
  return reshape(rotated, [B, H, T, d]);
}

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

export function linearComposite(q: Tensor, k: Tensor, v: Tensor, config: LinearConfig): Tensor4D {
  const T = q.shape[2] as number;
  const eps = config.eps ?? 1e-6;
  return tidy(() => {
    const phi = (x: Tensor) => add(elu(x), scalar(1));
    const a = mul(matMul(phi(q), phi(k), false, true), causalMask(T, T));
    return div(matMul(a, v), add(sum(a, -1, true), scalar(eps))) as Tensor4D;
  });
}

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
