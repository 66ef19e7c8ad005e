// The baseline mixers as tfjs ops, same layout as ovqAttention: q, k [batch, heads, seqLen, keyDim],
// v [batch, heads, seqLen, valueDim] → [batch, heads, seqLen, valueDim]. Each runs the
// @ovq/baselines fast path per [batch, head] and has a registered gradient (its exact backward).
// Configs are @ovq/baselines' own; invalid values are reported by @ovq/baselines when the op runs.
// On other backends (webgpu) every mixer runs as a composition of tfjs ops (../compositions/).
import {
  createDecayLinearState,
  createLinearState,
  type DecayLinearConfig,
  type GatedDeltaNetConfig,
  type KvmConfig,
  type LinearConfig,
  type SoftmaxConfig,
  type VqConfig,
} from '@ovq/baselines';
import { engine, type Tensor, type Tensor4D } from '@tensorflow/tfjs-core';
import {
  decayLinearComposite,
  gatedDeltaNetComposite,
  kvmComposite,
  linearComposite,
  softmaxComposite,
  vqComposite,
} from '../compositions/index.js';
import { describeShape, OvqTfjsInputError } from '../errors.js';
import {
  decayLinearMixer,
  gatedDeltaNetMixer,
  kvmMixer,
  linearMixer,
  softmaxMixer,
  vqMixer,
} from '../kernels/baselines.js';
import { onHostBackend, runHostMixer } from '../kernels/host-mixer.js';
import { gatedDeltaNetWebGpu } from '../kernels/webgpu-gated-deltanet.js';
import { checkPerToken, checkQkv, requireTensor } from './validate.js';

/**
 * Causal softmax attention y_t = Σ_{t−W < s ≤ t} softmax_s(β q̃_t·k̃_s) v_s; `config.window` W gives
 * sliding-window attention (SWA), `config.rope` rotary positions, `config.normalize` L2-normalised
 * q/k, `config.beta` the scale (default 1/√keyDim).
 */
export function softmaxAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  config: SoftmaxConfig = {},
): Tensor4D {
  checkQkv('softmaxAttention', q, k, v);
  if (!onHostBackend()) return softmaxComposite(q, k, v, config);
  return runHostMixer(softmaxMixer, { q, k, v }, config) as Tensor4D;
}

/** Linear attention with φ = elu + 1 and the normaliser φ(q)·Σφ(k) + eps (Katharopoulos et al.). */
export function linearAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  config: LinearConfig = {},
): Tensor4D {
  const dims = checkQkv('linearAttention', q, k, v);
  if (!onHostBackend()) {
    createLinearState(dims, config); // validates the config as the host kernel would
    return linearComposite(q, k, v, config);
  }
  return runHostMixer(linearMixer, { q, k, v }, config) as Tensor4D;
}

/**
 * Scalar-decay linear attention (Mamba2/SSD recurrence): S_t = a_t S_{t−1} + k_t v_tᵀ,
 * y_t = scale·S_tᵀ q_t; `decay` a is [batch, heads, seqLen] with every value in (0, 1].
 */
export function decayLinearAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  decay: Tensor,
  config: DecayLinearConfig = {},
): Tensor4D {
  const dims = checkQkv('decayLinearAttention', q, k, v);
  checkPerToken('decayLinearAttention', 'decay', decay, dims);
  if (!onHostBackend()) {
    // Decay values stay on the device there and are not range-checked.
    createDecayLinearState(dims, config);
    return decayLinearComposite(q, k, v, decay, config);
  }
  return runHostMixer(decayLinearMixer, { q, k, v, decay }, config) as Tensor4D;
}

/**
 * Gated DeltaNet: S_t = α_t (I − β_t k̂_t k̂_tᵀ) S_{t−1} + β_t k̂_t v_tᵀ, y_t = scale·S_tᵀ q̂_t
 * (q, k L2-normalised inside); `alpha` ∈ (0, 1] and `beta` ∈ [0, 2] are [batch, heads, seqLen].
 */
export function gatedDeltaNet(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  alpha: Tensor,
  beta: Tensor,
  config: GatedDeltaNetConfig = {},
): Tensor4D {
  const dims = checkQkv('gatedDeltaNet', q, k, v);
  checkPerToken('gatedDeltaNet', 'alpha', alpha, dims);
  checkPerToken('gatedDeltaNet', 'beta', beta, dims);
  // The WGSL kernel on webgpu; the composition on other non-host backends.
  if (engine().backendName === 'webgpu') return gatedDeltaNetWebGpu(q, k, v, alpha, beta, config);
  if (!onHostBackend()) return gatedDeltaNetComposite(q, k, v, alpha, beta, config);
  return runHostMixer(gatedDeltaNetMixer, { q, k, v, alpha, beta }, config) as Tensor4D;
}

/**
 * Transformer-VQ attention: keys are replaced by their nearest code; `codebook` is
 * [heads, codebookSize, keyDim] (one codebook per head; differentiable).
 */
export function vqAttention(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  codebook: Tensor,
  config: VqConfig,
): Tensor4D {
  const dims = checkQkv('vqAttention', q, k, v);
  const cb = requireTensor('codebook', codebook, 3, 'vqAttention');
  const size = config?.codebookSize;
  if (cb.shape[0] !== dims.heads || cb.shape[1] !== size || cb.shape[2] !== dims.keyDim) {
    throw new OvqTfjsInputError(
      'vqAttention: codebook',
      `has shape ${describeShape(cb.shape)}; expected [heads, config.codebookSize, keyDim] = [${dims.heads}, ${size}, ${dims.keyDim}]`,
    );
  }
  if (!onHostBackend()) return vqComposite(q, k, v, codebook, config);
  return runHostMixer(vqMixer, { q, k, v, codebook }, config) as Tensor4D;
}

/**
 * Key-Value Means attention (@ovq/baselines' KVM): one softmax over sink tokens, compressed
 * key/value-mean rows and a raw block window; `config` needs window, beta and budget.
 */
export function kvmAttention(q: Tensor, k: Tensor, v: Tensor, config: KvmConfig): Tensor4D {
  checkQkv('kvmAttention', q, k, v);
  if (!onHostBackend()) return kvmComposite(q, k, v, config);
  return runHostMixer(kvmMixer, { q, k, v }, config) as Tensor4D;
}
