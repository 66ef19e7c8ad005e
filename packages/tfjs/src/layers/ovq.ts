// The OVQ-attention layer: projections, per-head learnable β (stored as ln β so it stays > 0),
// L2-normalised q/k (inside the op), optional output gate, output projection.
import { createOvqState, type OvqState, ovqAppend, setOvqBeta, setOvqCapacity } from '@ovq/core';
import type { Tensor, Tensor3D, Tensor4D } from '@tensorflow/tfjs-core';
import { exp, serialization } from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable } from '@tensorflow/tfjs-layers';
import { OvqTfjsInputError } from '../errors.js';
import type { HeadData } from '../kernels/host-mixer.js';
import { type OvqOpConfig, ovqAttention, resolveOvqOpConfig } from '../ops/ovq.js';
import { type DictionaryHealth, dictionaryHealth } from '../streaming/ovq-health.js';
import type { ExtraKind, MixerStreamState } from '../streaming/state.js';
import { MixerLayer, type MixerLayerArgs } from './base.js';

export type OvqAttentionArgs = MixerLayerArgs &
  Partial<Omit<OvqOpConfig, 'seed'>> & {
    /** Initial β of every head (learned per head afterwards); default 8. */
    betaInit?: number;
    /** Seed of `spawn: 'random'` (OvqConfig.seed; `seed` seeds the weight initialisers). */
    spawnSeed?: number;
  };

const DEFAULTS = { chunkSize: 16, capacity: 64 };

export class OvqAttention extends MixerLayer<OvqState> {
  static className = 'OvqAttention';
  readonly ovqConfig: OvqOpConfig;
  readonly betaInit: number;
  protected readonly extraKinds: readonly ExtraKind[] = ['perHead'];
  private logBeta!: LayerVariable;

  constructor(args: OvqAttentionArgs) {
    super(args);
    const {
      chunkSize = DEFAULTS.chunkSize,
      capacity = DEFAULTS.capacity,
      growth,
      spawn,
      read,
      update,
      normalize,
      spawnSeed,
    } = args;
    this.ovqConfig = resolveOvqOpConfig({
      chunkSize,
      capacity,
      growth,
      spawn,
      read,
      update,
      normalize,
      seed: spawnSeed,
    });
    const betaInit = args.betaInit ?? 8;
    if (typeof betaInit !== 'number' || !(betaInit > 0) || !Number.isFinite(betaInit)) {
      throw new OvqTfjsInputError(
        'OvqAttention: betaInit',
        `got ${String(betaInit)}; expected a finite number > 0`,
      );
    }
    this.betaInit = betaInit;
  }

  protected buildMixer(): void {
    this.logBeta = this.addWeight(
      'log_beta',
      [this.heads],
      'float32',
      initializers.constant({ value: Math.log(this.betaInit) }),
    );
  }

  /** β per head, [heads] (a new tensor). */
  beta(): Tensor {
    return exp(this.logBeta.read());
  }

  protected extraInputs(): Tensor[] {
    return [this.beta()];
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D, extras: Tensor[]): Tensor4D {
    return ovqAttention(q, k, v, extras[0], this.ovqConfig);
  }

  protected createHeadState(): OvqState {
    // β is set from the current weights at every step (it is a trained parameter).
    return createOvqState(
      { keyDim: this.keyDim, valueDim: this.valueDim },
      { ...this.ovqConfig, beta: this.betaInit },
    );
  }

  protected appendHead(state: OvqState, head: HeadData): ArrayLike<number> {
    setOvqBeta(state, head.extras[0][0]);
    const { q, k, v, seqLen } = head;
    return ovqAppend(state, { q, k, v, seqLen });
  }

  /** Upper bound: N·(dk + dv + 1) dictionary numbers + C·(dk + dv) pending, capped by T tokens. */
  protected headStateSize(seqLen: number): number {
    const { capacity, chunkSize } = this.ovqConfig as { capacity: number; chunkSize: number };
    const dk = this.keyDim;
    const dv = this.valueDim;
    return Math.min(capacity, seqLen) * (dk + dv + 1) + Math.min(chunkSize, seqLen) * (dk + dv);
  }

  /**
   * Changes the capacity N of every dictionary of a streaming state (a test-time memory budget,
   * ALGORITHM.md §4): lowering it below the current size keeps the rows and stops spawning.
   */
  setStateCapacity(state: MixerStreamState<OvqState>, capacity: number): void {
    for (const head of state.perHead) setOvqCapacity(head, capacity);
  }

  /** Dictionary health of every [batch, head] of a streaming state (index b·heads + h). */
  dictionaryHealth(state: MixerStreamState<OvqState>): DictionaryHealth[] {
    return state.perHead.map(dictionaryHealth);
  }

  /** Streams x [batch, seqLen, modelDim] through a fresh state and reports its dictionaries. */
  dictionaryHealthOf(x: Tensor3D): DictionaryHealth[] {
    const state = this.createState(x.shape[0]);
    this.step(x, state).dispose();
    return this.dictionaryHealth(state);
  }

  protected mixerConfig(): serialization.ConfigDict {
    const { seed, ...rest } = this.ovqConfig;
    return { ...(rest as serialization.ConfigDict), spawnSeed: seed ?? 0, betaInit: this.betaInit };
  }
}
serialization.registerClass(OvqAttention);
