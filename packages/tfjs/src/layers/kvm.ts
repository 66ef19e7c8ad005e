// Key-Value Means attention layer (the later method OVQ is compared with, ALGORITHM.md §7).
import {
  createKvmState,
  type KvmBudget,
  type KvmConfig,
  type KvmState,
  kvmAppend,
  kvmStateSize,
} from '@ovq/baselines';
import type { Tensor, Tensor4D } from '@tensorflow/tfjs-core';
import { serialization } from '@tensorflow/tfjs-core';
import type { HeadData } from '../kernels/host-mixer.js';
import { kvmAttention } from '../ops/baselines.js';
import type { ExtraKind } from '../streaming/state.js';
import { MixerLayer, type MixerLayerArgs } from './base.js';

export type KvmAttentionArgs = MixerLayerArgs & {
  /** Raw window W in tokens (a multiple of blockSize). */
  window: number;
  /** Block size; default = window. */
  blockSize?: number;
  /** Logit scale β (queries and keys are unit vectors); default 8. */
  beta?: number;
  /** Row budget schedule, e.g. {kind: 'sqrt', scale: 2}. */
  budget: KvmBudget;
  /** Tokens kept exactly forever at the start; default 0. */
  sinks?: number;
};

export class KvmAttention extends MixerLayer<KvmState> {
  static className = 'KvmAttention';
  readonly config: KvmConfig;
  protected readonly extraKinds: readonly ExtraKind[] = [];

  constructor(args: KvmAttentionArgs) {
    super(args);
    const config: KvmConfig = { window: args.window, beta: args.beta ?? 8, budget: args.budget };
    if (args.blockSize != null) config.blockSize = args.blockSize;
    if (args.sinks != null) config.sinks = args.sinks;
    createKvmState({ keyDim: this.keyDim, valueDim: this.valueDim }, config);
    this.config = config;
  }

  protected buildMixer(): void {}

  protected extraInputs(): Tensor[] {
    return [];
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D): Tensor4D {
    return kvmAttention(q, k, v, this.config);
  }

  protected createHeadState(): KvmState {
    return createKvmState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected appendHead(state: KvmState, head: HeadData): ArrayLike<number> {
    return kvmAppend(state, head);
  }

  protected headStateSize(seqLen: number): number {
    return kvmStateSize({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config, seqLen);
  }

  protected mixerConfig(): serialization.ConfigDict {
    return {
      window: this.config.window,
      blockSize: this.config.blockSize ?? this.config.window,
      beta: this.config.beta,
      budget: this.config.budget as serialization.ConfigDict,
      sinks: this.config.sinks ?? 0,
    };
  }
}
serialization.registerClass(KvmAttention);
