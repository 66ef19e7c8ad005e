// The mixers of @ovq/tfjs behind the decoder's MixerFactory. SWA gets RoPE; every long-range
// mixer is NoPE. OVQ, KVM and VQ are given comparable memory (capacity / row budget / codes).
import {
  DecayLinearAttention,
  GatedDeltaNet,
  KvmAttention,
  LinearAttention,
  OvqAttention,
  SoftmaxAttention,
  VqAttention,
} from '@ovq/tfjs';
import type { MixerFactory, MixerLayer, MixerOptions } from './decoder.js';

/** The trainer's Transformer-VQ dead-code restart threshold (keys per step) when none is set. */
export const VQ_DEAD_CODE_THRESHOLD = 2;

/** Sliding-window attention's window (tokens) when `mixerOptions.window` is not set. */
export const DEFAULT_SWA_WINDOW = 16;

/** The window the trainer's sliding-window layers use for these mixer options. */
export const swaWindow = (options: MixerOptions = {}) => options.window ?? DEFAULT_SWA_WINDOW;

export const createTfjsMixer: MixerFactory = (kind, { dModel, heads, layerIndex }, o) => {
  const base = { heads, keyDim: dModel / heads, seed: 1000 + 10 * layerIndex };
  const window = swaWindow(o);
  const capacity = o.ovqCapacity ?? 64;
  let layer: unknown;
  switch (kind) {
    case 'swa':
      layer = new SoftmaxAttention({ ...base, window, ropeBase: o.ropeBase ?? 10000 });
      break;
    case 'softmax':
      layer = new SoftmaxAttention(base);
      break;
    case 'ovq':
      layer = new OvqAttention({
        ...base,
        capacity,
        chunkSize: o.ovqChunkSize ?? 16,
        growth: o.ovqGrowth,
        spawn: o.ovqSpawn,
        update: o.ovqUpdate,
        spawnDistance: o.ovqSpawnDistance,
        outputNorm: o.ovqOutputNorm,
      });
      break;
    case 'linear':
      layer = new LinearAttention(base);
      break;
    case 'decay':
      layer = new DecayLinearAttention({ ...base, decayBiasInit: o.decayBiasInit });
      break;
    case 'gdn':
      layer = new GatedDeltaNet({
        ...base,
        decayBiasInit: o.decayBiasInit,
        writeBiasInit: o.gdnWriteBiasInit,
        outputNorm: o.gdnOutputNorm,
      });
      break;
    case 'vq':
      layer = new VqAttention({
        ...base,
        codebookSize: o.vqCodes ?? capacity,
        blockLength: o.ovqChunkSize ?? 16,
        deadCodeThreshold: o.vqDeadCodeThreshold ?? VQ_DEAD_CODE_THRESHOLD,
        beta: o.vqBeta,
        cacheKeyGradient: o.vqCacheKeyGradient,
      });
      break;
    case 'kvm':
      layer = new KvmAttention({
        ...base,
        window,
        budget: { kind: 'saturating', rows: o.kvmBudget ?? capacity },
        outputNorm: o.kvmOutputNorm,
      });
      break;
  }
  return layer as MixerLayer;
};
