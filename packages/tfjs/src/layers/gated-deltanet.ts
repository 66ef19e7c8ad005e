// Gated DeltaNet layer: per-token, per-head gate α = exp(−softplus(x·W_α + b_α)) ∈ (0, 1] and
// writing strength β = sigmoid(x·W_β + b_β) ∈ (0, 1); q/k are L2-normalised inside the op.
import {
  createGatedDeltaNetState,
  type GatedDeltaNetConfig,
  type GatedDeltaNetState,
  gatedDeltaNetAppend,
  gatedDeltaNetStateSize,
} from '@ovq/baselines';
import type { Tensor, Tensor3D, Tensor4D } from '@tensorflow/tfjs-core';
import { add, reshape, serialization, sigmoid, transpose } from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable } from '@tensorflow/tfjs-layers';
import type { HeadData } from '../kernels/host-mixer.js';
import { gatedDeltaNet } from '../ops/baselines.js';
import { explicitMatMul } from '../ops/matmul.js';
import type { ExtraKind } from '../streaming/state.js';
import { checkNumberArg, MixerLayer, type MixerLayerArgs } from './base.js';
import { tokenDecay } from './linear.js';

export type GatedDeltaNetArgs = MixerLayerArgs & {
  /** Output scale; default 1/√keyDim. */
  scale?: number;
  /** Initial bias of the gate logits (α ≈ exp(−softplus(b))); default −3 (≈ 0.95). */
  decayBiasInit?: number;
  /** Initial bias of the writing-strength logits (β ≈ sigmoid(b)); default 0 (β ≈ 0.5). */
  writeBiasInit?: number;
};

export class GatedDeltaNet extends MixerLayer<GatedDeltaNetState> {
  static className = 'GatedDeltaNet';
  readonly config: GatedDeltaNetConfig;
  readonly decayBiasInit: number;
  readonly writeBiasInit: number;
  protected readonly extraKinds: readonly ExtraKind[] = ['perToken', 'perToken'];
  private wa!: LayerVariable;
  private ba!: LayerVariable;
  private wb!: LayerVariable;
  private bb!: LayerVariable;

  constructor(args: GatedDeltaNetArgs) {
    super(args);
    this.config = { scale: args.scale ?? 1 / Math.sqrt(this.keyDim) };
    const name = 'GatedDeltaNet';
    const bias = (arg: string, x: unknown) =>
      checkNumberArg(name, arg, x, Number.isFinite, 'a finite number');
    this.decayBiasInit = bias('decayBiasInit', args.decayBiasInit ?? -3);
    this.writeBiasInit = bias('writeBiasInit', args.writeBiasInit ?? 0);
    createGatedDeltaNetState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected buildMixer(d: number): void {
    const H = this.heads;
    this.wa = this.addWeight('wa', [d, H], 'float32', this.initializer(5));
    this.ba = this.addWeight(
      'ba',
      [H],
      'float32',
      initializers.constant({ value: this.decayBiasInit }),
    );
    this.wb = this.addWeight('wb', [d, H], 'float32', this.initializer(6));
    this.bb = this.addWeight(
      'bb',
      [H],
      'float32',
      initializers.constant({ value: this.writeBiasInit }),
    );
  }

  protected extraInputs(x: Tensor3D): Tensor[] {
    const [B, T, D] = x.shape;
    const H = this.heads;
    const zb = add(
      reshape(explicitMatMul(reshape(x, [B * T, D]), this.wb.read()), [B, T, H]),
      this.bb.read(),
    );
    return [tokenDecay(x, this.wa.read(), this.ba.read(), H), transpose(sigmoid(zb), [0, 2, 1])];
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D, extras: Tensor[]): Tensor4D {
    return gatedDeltaNet(q, k, v, extras[0], extras[1], this.config);
  }

  protected createHeadState(): GatedDeltaNetState {
    return createGatedDeltaNetState({ keyDim: this.keyDim, valueDim: this.valueDim }, this.config);
  }

  protected appendHead(state: GatedDeltaNetState, head: HeadData): ArrayLike<number> {
    return gatedDeltaNetAppend(state, { ...head, alpha: head.extras[0], beta: head.extras[1] });
  }

  protected headStateSize(seqLen: number): number {
    const dims = { keyDim: this.keyDim, valueDim: this.valueDim };
    return gatedDeltaNetStateSize(dims, this.config, seqLen);
  }

  protected mixerConfig(): serialization.ConfigDict {
    return {
      scale: this.config.scale as number,
      decayBiasInit: this.decayBiasInit,
      writeBiasInit: this.writeBiasInit,
    };
  }
}
serialization.registerClass(GatedDeltaNet);
