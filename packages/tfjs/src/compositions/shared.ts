// Helpers shared by the compositions: L2 normalisation, causal masks and rotary embeddings.
import {
  add,
  getBackend,
  maximum,
  mul,
  reshape,
  rsqrt,
  scalar,
  square,
  stack,
  sub,
  sum,
  type Tensor,
  tensor2d,
  unstack,
} from '@tensorflow/tfjs-core';

/** x / max(‖x‖, 1e-12) over the last axis, written so that its gradient is finite at x = 0. */
export function l2Normalize(x: Tensor): Tensor {
  return mul(x, rsqrt(maximum(sum(square(x), -1, true), scalar(1e-24))));
}

/** [T, T] mask: key s is visible to query t when t − window < s ≤ t. */
export function causalMask(seqLen: number, window: number): Tensor {
  const m = new Float32Array(seqLen * seqLen);
  for (let t = 0; t < seqLen; t++) {
    for (let s = Math.max(0, t - window + 1); s <= t; s++) m[t * seqLen + s] = 1;
  }
  return tensor2d(m, [seqLen, seqLen]);
}

/** Rotary embedding on interleaved pairs (x[2i], x[2i+1]) at positions 0…T−1, as @ovq/baselines. */
export function rope(x: Tensor, base: number): Tensor {
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

/** The error of a mixer that has neither a host kernel nor a composition on this backend. */
export function noComposition(kernelName: string): never {
  throw new Error(
    `${kernelName}: no kernel for the '${getBackend()}' backend; expected one of cpu, wasm (see @ovq/tfjs README, "Backends")`,
  );
}
