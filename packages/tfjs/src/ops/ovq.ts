// The public OVQ-attention op: validates, then runs the registered kernel (gradient included).
import { resolveOvqConfig } from '@ovq/core';
import type { Tensor, Tensor1D, Tensor4D } from '@tensorflow/tfjs-core';
import { OvqTfjsInputError } from '../errors.js';
import { runHostMixer } from '../kernels/host-mixer.js';
import { type OvqOpConfig, ovqMixer } from '../kernels/ovq.js';
import { checkPerHead, checkQkv } from './validate.js';

export type { OvqOpConfig };

/** Validates an OVQ op config (every @ovq/core option except β) and fills in the defaults. */
export function resolveOvqOpConfig(config: OvqOpConfig): OvqOpConfig {
  if (typeof config === 'object' && config !== null && 'beta' in config) {
    throw new OvqTfjsInputError(
      'config.beta',
      'is not an option of the tfjs op; pass β as the per-head tensor argument `beta` ([heads])',
    );
  }
  // β is checked per head by the kernel; a placeholder lets core validate everything else.
  const { beta: _beta, ...rest } = resolveOvqConfig({ ...config, beta: 1 });
  return rest;
}

/**
 * OVQ-attention (ALGORITHM.md §4) on q, k [batch, heads, seqLen, keyDim] and
 * v [batch, heads, seqLen, valueDim]; `beta` is the inverse temperature per head, shape [heads],
 * every value > 0. Returns [batch, heads, seqLen, valueDim]. Each sequence starts from an empty
 * dictionary. Differentiable in q, k, v and β (the discrete absorb decisions are constants).
 */
export function ovqAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  beta: Tensor,
  config: OvqOpConfig,
): Tensor4D {
  const dims = checkQkv('ovqAttention', q, k, v);
  checkPerHead('ovqAttention', 'beta', beta, dims);
  const resolved = resolveOvqOpConfig(config);
  return runHostMixer(ovqMixer, { q, k, v, beta: beta as Tensor1D }, resolved) as Tensor4D;
}
