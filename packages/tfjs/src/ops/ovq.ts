// The public OVQ-attention op: validates, then runs the registered kernel (gradient included).
import { resolveOvqConfig } from '@ovq/core';
import type { Tensor, Tensor1D, Tensor4D } from '@tensorflow/tfjs-core';
import { engine, mul, reshape, sqrt, tidy, zeros } from '@tensorflow/tfjs-core';
import { l2Normalize } from '../compositions/shared.js';
import { OvqTfjsInputError } from '../errors.js';
import { runHostMixer } from '../kernels/host-mixer.js';
import { type OvqOpConfig, ovqMixer } from '../kernels/ovq.js';
import { ovqWebGpuKernel } from '../kernels/webgpu-ovq.js';
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
 * Backends: cpu, wasm and webgpu, every option but `spawnDistance` (cpu and wasm only).
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
  if (engine().backendName === 'webgpu') return ovqAttentionWebGpu(q, k, v, beta, resolved);
  return runHostMixer(ovqMixer, { q, k, v, beta: beta as Tensor1D }, resolved) as Tensor4D;
}

/**
 * The queries and keys the β = 1, normalize = false webgpu kernel takes for per-head `beta`
 * [heads]: normalised (unless config.normalize is false), then β-scaled as ovqAttentionWebGpu
 * explains. Shared by the op and the layer's GPU streaming.
 */
export function foldBetaIntoQk(
  q: Tensor,
  k: Tensor,
  beta: Tensor,
  config: OvqOpConfig,
): { q: Tensor; k: Tensor } {
  const H = q.shape[1] as number;
  const qHat = config.normalize === false ? q : l2Normalize(q);
  const kHat = config.normalize === false ? k : l2Normalize(k);
  const perHead = reshape(beta, [1, H, 1, 1]);
  const gaussian = config.read === 'gaussian';
  const scale = gaussian ? sqrt(perHead) : perHead;
  return { q: mul(qHat, scale), k: gaussian ? mul(kHat, scale) : kHat };
}

/**
 * The webgpu route: β and the normalisation as tfjs ops around the @ovq/webgpu kernel, which runs
 * with β = 1 (its state has one β for every head, and a kernel cannot read a GPU tensor).
 * 'dot' read: β q̂·μ = (β q̂)·μ, so β scales the queries. 'gaussian' read: β(q̂·μ − ‖μ‖²/2) equals
 * the β = 1 read of queries and keys both scaled by √β (centroids are key means, so they scale
 * too). Absorb decisions are nearest / farthest comparisons of squared distances, which a
 * per-head scale leaves unchanged.
 */
function ovqAttentionWebGpu(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  beta: Tensor,
  config: OvqOpConfig,
): Tensor4D {
  const [B, H, T] = q.shape;
  if (T === 0) return zeros([B, H, 0, v.shape[3] as number]);
  return tidy(() => {
    const { q: qScaled, k: kScaled } = foldBetaIntoQk(q, k, beta, config);
    const kernelConfig = { ...config, normalize: false, beta: 1 };
    return ovqWebGpuKernel(qScaled, kScaled, v, { config: JSON.stringify(kernelConfig) });
  });
}
