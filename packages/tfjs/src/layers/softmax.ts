// Softmax attention layer: full causal attention, or sliding-window attention (SWA) with `window`,
// optional RoPE (`ropeBase`) and L2-normalised q/k. Its streaming state is the KV cache (bounded by
// the window for SWA).
import {
  createSoftmaxState,
  type SoftmaxConfig,
  type SoftmaxState,
  softmaxAppend,
  softmaxStateSize,
} from '@ovq/baselines';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { serialization } from '@tensorflow/tfjs-core';
import type { HeadData } from '../kernels/host-mixer.js';
import { softmaxAttention } from '../ops/baselines.js';
import type { ExtraKind } from '../streaming/state.js';
import { MixerLayer, type MixerLayerArgs } from './base.js';

export type SoftmaxAttentionArgs = MixerLayerArgs & {
  /** Sliding window W (token t reads t−W+1 … t); default unlimited (full attention). */
  window?: number | null;
  /** RoPE base (e.g. 10000); default none (NoPE). Needs an even keyDim. */
  ropeBase?: number | null;
  /** L2-normalise q and k; default false. */
  normalize?: boolean;
  /** Logit scale β; default 1/√keyDim. */
  beta?: number | null;
};

export class SoftmaxAttention extends MixerLayer<SoftmaxState> {
  static className = 'SoftmaxAttention';
  readonly config: SoftmaxConfig;
  protected readonly extraKinds: readonly ExtraKind[] = [];

  constructor(args: SoftmaxAttentionArgs) {
    super(args);
    const config: SoftmaxConfig = { normalize: args.normalize ?? false };
    if (args.window != null) config.window = args.window;
    if (args.ropeBase != null) config.rope = { base: args.ropeBase };
    if (args.beta != null) config.beta = args.beta;
    // Validates now (errors name config.window, config.rope.base, …) rather than at the first call.
    createSoftmaxState({ keyDim: this.keyDim, valueDim: this.valueDim }, config);
    this.config = config;
  }

  protected buildMixer(): void {}

  protected extraInputs(): Tensor[] {
    return [];
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D): Tensor4D {
    return softmaxAttention(q, k, v, this.config);
  }

  protected createHeadState(): SoftmaxState {
    return createSoftmaxState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected appendHead(state: SoftmaxState, head: HeadData): ArrayLike<number> {
    return softmaxAppend(state, head);
  }

  protected headStateSize(seqLen: number): number {
    return softmaxStateSize({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config, seqLen);
  }

  protected mixerConfig(): serialization.ConfigDict {
    return {
      window: this.config.window ?? null,
      ropeBase: this.config.rope?.base ?? null,
      normalize: this.config.normalize ?? false,
      beta: this.config.beta ?? null,
    };
  }
}
serialization.registerClass(SoftmaxAttention);
