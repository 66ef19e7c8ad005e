// Linear attention (φ = elu + 1) as a composition of tfjs ops (the webgpu route), in chunked form:
// within a chunk of LINEAR_CHUNK steps a masked [chunk, chunk] score matrix, across chunks the
// states Σ φ(k) vᵀ and Σ φ(k) of all earlier chunks by an exclusive cumsum. Memory is
// O(seqLen · chunk + chunks · dk · dv) per [batch, head]; tfjs autodiff gives the gradient.
import type { LinearConfig } from '@ovq/baselines';
import {
  add,
  div,
  elu,
  expandDims,
  matMul,
  mul,
  scalar,
  sum,
  type Tensor,
  type Tensor4D,
  tidy,
} from '@tensorflow/tfjs-core';
import { causalMask, cumsumAlong, fromChunks, toChunks } from './shared.js';

/** Time steps per chunk (fewer when the sequence is shorter). */
export const LINEAR_CHUNK = 64;

export function linearComposite(q: Tensor, k: Tensor, v: Tensor, config: LinearConfig): Tensor4D {
  const T = q.shape[2] as number;
  const eps = config.eps ?? 1e-6;
  const C = Math.min(LINEAR_CHUNK, T);
  return tidy(() => {
    const phi = (x: Tensor) => add(elu(x), scalar(1));
    // Padding comes after φ: a padded key is zero and lies after every real query anyway.
    const phiQ = toChunks(phi(q), C); // [B, H, n, C, dk]
    const phiK = toChunks(phi(k), C);
    const vc = toChunks(v, C); // [B, H, n, C, dv]
    const scores = mul(matMul(phiQ, phiK, false, true), causalMask(C, C)); // [B, H, n, C, C]
    const kvBefore = cumsumAlong(matMul(phiK, vc, true, false), 2, true); // [B, H, n, dk, dv]
    const kSumBefore = expandDims(cumsumAlong(sum(phiK, 3), 2, true), 4); // [B, H, n, dk, 1]
    const numerator = add(matMul(scores, vc), matMul(phiQ, kvBefore));
    const normaliser = add(sum(scores, -1, true), matMul(phiQ, kSumBefore));
    return fromChunks(div(numerator, add(normaliser, scalar(eps))), T) as Tensor4D;
  });
}
