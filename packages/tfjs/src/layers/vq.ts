// Transformer-VQ attention layer: keys are quantised to a learned per-head codebook
// [heads, codebookSize, keyDim] (trained by gradient through the op's straight-through backward).
import { createVqState, type VqConfig, type VqState, vqAppend, vqStateSize } from '@ovq/baselines';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { serialization } from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable } from '@tensorflow/tfjs-layers';
import type { HeadData } from '../kernels/host-mixer.js';
import { vqAttention } from '../ops/baselines.js';
import type { ExtraKind } from '../streaming/state.js';
import { MixerLayer, type MixerLayerArgs } from './base.js';

export type VqAttentionArgs = MixerLayerArgs & {
  /** Number of codes S per head. */
  codebookSize: number;
  /** Block length L (a query reads its own and the previous block exactly); default 64. */
  blockLength?: number;
  /** Logit scale; default 1/√keyDim. */
  beta?: number | null;
};

export class VqAttention extends MixerLayer<VqState> {
  static className = 'VqAttention';
  readonly config: VqConfig;
  protected readonly extraKinds: readonly ExtraKind[] = ['perHead'];
  private codebook!: LayerVariable;

  constructor(args: VqAttentionArgs) {
    super(args);
    const config: VqConfig = { codebookSize: args.codebookSize };
    if (args.blockLength != null) config.blockLength = args.blockLength;
    if (args.beta != null) config.beta = args.beta;
    createVqState({ keyDim: this.keyDim, valueDim: this.valueDim }, config);
    this.config = config;
  }

  protected buildMixer(): void {
    this.codebook = this.addWeight(
      'codebook',
      [this.heads, this.config.codebookSize, this.keyDim],
      'float32',
      initializers.randomNormal({ mean: 0, stddev: 0.5, seed: this.seed }),
    );
  }

  protected extraInputs(): Tensor[] {
    return [this.codebook.read()];
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D, extras: Tensor[]): Tensor4D {
    return vqAttention(q, k, v, extras[0], this.config);
  }

  protected createHeadState(): VqState {
    return createVqState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected appendHead(state: VqState, head: HeadData): ArrayLike<number> {
    return vqAppend(state, { ...head, codebook: head.extras[0] });
  }

  protected headStateSize(seqLen: number): number {
    return vqStateSize({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config, seqLen);
  }

  protected mixerConfig(): serialization.ConfigDict {
    return {
      codebookSize: this.config.codebookSize,
      blockLength: this.config.blockLength ?? 64,
      beta: this.config.beta ?? null,
    };
  }
}
serialization.registerClass(VqAttention);
