// Linear attention and scalar-decay linear attention (Mamba2-style) layers. The decay is per token
// and head: a = exp(−softplus(x·W_a + b_a)) ∈ (0, 1], clipped at 1e-6 so it stays a valid input.
import {
  createDecayLinearState,
  createLinearState,
  type DecayLinearConfig,
  type DecayLinearState,
  decayLinearAppend,
  decayLinearStateSize,
  type LinearConfig,
  type LinearState,
  linearAppend,
  linearStateSize,
} from '@ovq/baselines';
import type { Tensor, Tensor3D, Tensor4D } from '@tensorflow/tfjs-core';
import {
  add,
  clipByValue,
  exp,
  neg,
  reshape,
  serialization,
  softplus,
  transpose,
} from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable } from '@tensorflow/tfjs-layers';
import type { HeadData } from '../kernels/host-mixer.js';
import { decayLinearAttention, linearAttention } from '../ops/baselines.js';
import { explicitMatMul } from '../ops/matmul.js';
import type { ExtraKind } from '../streaming/state.js';
import { MixerLayer, type MixerLayerArgs } from './base.js';

export type LinearAttentionArgs = MixerLayerArgs & {
  /** Added to the normaliser; default 1e-6. */
  eps?: number;
};

export class LinearAttention extends MixerLayer<LinearState> {
  static className = 'LinearAttention';
  readonly config: LinearConfig;
  protected readonly extraKinds: readonly ExtraKind[] = [];

  constructor(args: LinearAttentionArgs) {
    super(args);
    this.config = args.eps === undefined ? {} : { eps: args.eps };
    createLinearState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected buildMixer(): void {}

  protected extraInputs(): Tensor[] {
    return [];
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D): Tensor4D {
    return linearAttention(q, k, v, this.config);
  }

  protected createHeadState(): LinearState {
    return createLinearState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected appendHead(state: LinearState, head: HeadData): ArrayLike<number> {
    return linearAppend(state, head);
  }

  protected headStateSize(seqLen: number): number {
    return linearStateSize({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config, seqLen);
  }

  protected mixerConfig(): serialization.ConfigDict {
    return { eps: this.config.eps ?? 1e-6 };
  }
}
serialization.registerClass(LinearAttention);

/** Per-token, per-head gate in (0, 1]: exp(−softplus(x·W + b)) as [batch, heads, seqLen]. */
export function tokenDecay(x: Tensor3D, w: Tensor, b: Tensor, heads: number): Tensor {
  const [B, T, D] = x.shape;
  const z = add(reshape(explicitMatMul(reshape(x, [B * T, D]), w), [B, T, heads]), b);
  return clipByValue(transpose(exp(neg(softplus(z))), [0, 2, 1]), 1e-6, 1);
}

export type DecayLinearAttentionArgs = MixerLayerArgs & {
  /** Output scale; default 1/√keyDim. */
  scale?: number;
  /** Initial bias of the decay logits (decay ≈ exp(−softplus(b))); default −3 (≈ 0.95). */
  decayBiasInit?: number;
};

export class DecayLinearAttention extends MixerLayer<DecayLinearState> {
  static className = 'DecayLinearAttention';
  readonly config: DecayLinearConfig;
  readonly decayBiasInit: number;
  protected readonly extraKinds: readonly ExtraKind[] = ['perToken'];
  private wa!: LayerVariable;
  private ba!: LayerVariable;

  constructor(args: DecayLinearAttentionArgs) {
    super(args);
    this.config = { scale: args.scale ?? 1 / Math.sqrt(this.keyDim) };
    this.decayBiasInit = args.decayBiasInit ?? -3;
    createDecayLinearState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected buildMixer(d: number): void {
    this.wa = this.addWeight('wa', [d, this.heads], 'float32', this.initializer(5));
    this.ba = this.addWeight(
      'ba',
      [this.heads],
      'float32',
      initializers.constant({ value: this.decayBiasInit }),
    );
  }

  protected extraInputs(x: Tensor3D): Tensor[] {
    return [tokenDecay(x, this.wa.read(), this.ba.read(), this.heads)];
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D, extras: Tensor[]): Tensor4D {
    return decayLinearAttention(q, k, v, extras[0], this.config);
  }

  protected createHeadState(): DecayLinearState {
    return createDecayLinearState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected appendHead(state: DecayLinearState, head: HeadData): ArrayLike<number> {
    return decayLinearAppend(state, { ...head, decay: head.extras[0] });
  }

  protected headStateSize(seqLen: number): number {
    const dims = { keyDim: this.keyDim, valueDim: this.valueDim };
    return decayLinearStateSize(dims, this.config, seqLen);
  }

  protected mixerConfig(): serialization.ConfigDict {
    return { scale: this.config.scale as number, decayBiasInit: this.decayBiasInit };
  }
}
serialization.registerClass(DecayLinearAttention);
