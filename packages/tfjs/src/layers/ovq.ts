// The OVQ-attention layer: projections, per-head learnable β (stored as ln β so it stays > 0),
// L2-normalised q/k (inside the op), optional output gate, output projection.
import {
  createOvqState,
  type OvqConfig,
  type OvqState,
  ovqAppend,
  type Seq,
  setOvqBeta,
  setOvqCapacity,
} from '@ovq/core';
import { createGpuOvqState } from '@ovq/webgpu';
import type { Tensor, Tensor3D, Tensor4D } from '@tensorflow/tfjs-core';
import { dispose, engine, exp, getBackend, serialization, tidy } from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable } from '@tensorflow/tfjs-layers';
import { OvqTfjsInputError } from '../errors.js';
import type { HeadData } from '../kernels/host-mixer.js';
import { contextFor, type WebGpuBackendLike } from '../kernels/webgpu-bridge.js';
import { ovqAppendWebGpu } from '../kernels/webgpu-ovq.js';
import { foldBetaIntoQk, type OvqOpConfig, ovqAttention, resolveOvqOpConfig } from '../ops/ovq.js';
import {
  endGpuStream,
  type GpuStream,
  gpuStreamOf,
  startGpuStream,
  streamToHost,
} from '../streaming/ovq-gpu.js';
import { type DictionaryHealth, dictionaryHealth } from '../streaming/ovq-health.js';
import { type ExtraKind, headViews, type MixerStreamState } from '../streaming/state.js';
import { checkNumberArg, MixerLayer, type MixerLayerArgs } from './base.js';

export type OvqAttentionArgs = MixerLayerArgs &
  Partial<Omit<OvqOpConfig, 'seed'>> & {
    /** Initial β of every head (learned per head afterwards); default 8. */
    betaInit?: number;
    /** Seed of `spawn: 'random'` (OvqConfig.seed; `seed` seeds the weight initialisers). */
    spawnSeed?: number;
  };

const DEFAULTS = { chunkSize: 16, capacity: 64 };

/** What one [batch, head] of the layer hands its OVQ op: a @ovq/core sequence and config. */
export type OvqHeadInputs = {
  /** Queries and keys before the op's L2 normalisation, values as projected (float32 copies). */
  seq: Seq;
  /** The layer's op config with this head's current β. */
  config: OvqConfig;
};

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
      spawnDistance,
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
      spawnDistance,
      read,
      update,
      normalize,
      seed: spawnSeed,
    });
    this.betaInit = checkNumberArg(
      'OvqAttention',
      'betaInit',
      args.betaInit ?? 8,
      (x) => x > 0 && Number.isFinite(x),
      'a finite number > 0',
    );
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
   * Streams x through `state` (see MixerLayer.step). On the webgpu backend a state's first
   * stepAsync moves it to the GPU: its dictionaries then live in GPU buffers and each step feeds
   * the projections' GPU buffers to the kernels, reading nothing back (only the output tensor is
   * returned). Such a state keeps streaming with stepAsync; `moveStateToHost` brings it back
   * (needed for `step`, `dictionaryHealth` or another backend). A state begun on the host stays
   * there.
   */
  override async stepAsync(x: Tensor, state: MixerStreamState<OvqState>): Promise<Tensor3D> {
    const onGpu = gpuStreamOf(state) !== undefined;
    const tokens = x.rank === 3 ? (x.shape[1] as number) : 0;
    if (getBackend() === 'webgpu' && tokens > 0 && (onGpu || state?.position === 0)) {
      return this.stepOnGpu(x, state);
    }
    // Another backend than the one the GPU stream started on: continue on the host.
    if (onGpu && tokens > 0) await this.moveStateToHost(state);
    return super.stepAsync(x, state);
  }

  override step(x: Tensor, state: MixerStreamState<OvqState>): Tensor3D {
    this.requireHostState(state, 'step');
    return super.step(x, state);
  }

  private async stepOnGpu(x: Tensor, state: MixerStreamState<OvqState>): Promise<Tensor3D> {
    const { input, tensors } = this.prepareStep(x, state, 'stepAsync');
    const [q, k, v, beta] = tensors;
    let y: Tensor4D;
    try {
      const betaId = this.logBeta.read().dataId;
      const stream =
        gpuStreamOf(state) ??
        startGpuStream(state, {
          gpu: createGpuOvqState(
            contextFor((engine().backend as unknown as WebGpuBackendLike).device),
            { batchHeads: state.batch * this.heads, keyDim: this.keyDim, valueDim: this.valueDim },
            // β and the normalisation are folded into q and k (ops/ovq.ts), as in the op.
            {
              ...this.ovqConfig,
              capacity: state.perHead[0].config.capacity,
              normalize: false,
              beta: 1,
            },
          ),
          betaId,
        });
      this.requireStartBeta(stream, 'stepAsync');
      y = tidy(() => {
        const folded = foldBetaIntoQk(q, k, beta, this.ovqConfig);
        return ovqAppendWebGpu(stream.gpu, folded.q, folded.k, v);
      });
    } finally {
      dispose(tensors);
    }
    state.position += input.shape[1];
    const result = tidy(() => this.fromHeads(y, input));
    dispose(y);
    return result;
  }

  /** The 'gaussian' GPU dictionary holds √β-scaled keys: β must not change mid-stream. */
  private requireStartBeta(stream: GpuStream, method: string): void {
    if (this.ovqConfig.read === 'gaussian' && stream.betaId !== this.logBeta.read().dataId) {
      throw new OvqTfjsInputError(
        `OvqAttention.${method}: state`,
        'holds √β-scaled keys on the GPU (gaussian read) and log_beta was assigned since the stream started; finish it with the β it started with (restore that value), or call moveStateToHost(state) before changing β',
      );
    }
  }

  private requireHostState(state: MixerStreamState<OvqState>, method: string): void {
    if (gpuStreamOf(state)) {
      throw new OvqTfjsInputError(
        `OvqAttention.${method}: state`,
        'lives on the GPU (stepAsync on the webgpu backend started it); keep using stepAsync, or `await layer.moveStateToHost(state)` first',
      );
    }
  }

  /**
   * Reads a GPU-resident state (see stepAsync) back into host @ovq/core states and frees its GPU
   * buffers; streaming continues on the host from there. No-op for a host state.
   */
  async moveStateToHost(state: MixerStreamState<OvqState>): Promise<void> {
    const stream = gpuStreamOf(state);
    if (!stream) return;
    this.requireStartBeta(stream, 'moveStateToHost');
    const beta = this.beta();
    const values = await beta.data();
    beta.dispose();
    const heads = await streamToHost(stream, values, this, this.ovqConfig);
    heads.forEach((h, i) => {
      state.perHead[i] = h;
    });
    endGpuStream(state);
  }

  /** Frees the GPU buffers of a GPU-resident state now (they are also freed when it is collected). */
  disposeState(state: MixerStreamState<OvqState>): void {
    endGpuStream(state);
  }

  /**
   * Changes the capacity N of every dictionary of a streaming state (a test-time memory budget,
   * ALGORITHM.md §4): lowering it below the current size keeps the rows and stops spawning.
   */
  setStateCapacity(state: MixerStreamState<OvqState>, capacity: number): void {
    for (const head of state.perHead) setOvqCapacity(head, capacity);
    gpuStreamOf(state)?.gpu.setCapacity(capacity);
  }

  /** Dictionary health of every [batch, head] of a streaming state (index b·heads + h). */
  dictionaryHealth(state: MixerStreamState<OvqState>): DictionaryHealth[] {
    this.requireHostState(state, 'dictionaryHealth');
    return state.perHead.map(dictionaryHealth);
  }

  /** Streams x [batch, seqLen, modelDim] through a fresh state and reports its dictionaries. */
  dictionaryHealthOf(x: Tensor3D): DictionaryHealth[] {
    const state = this.createState(x.shape[0]);
    this.step(x, state).dispose();
    return this.dictionaryHealth(state);
  }

  /**
   * What the OVQ op of each [batch, head] reads for x [batch, seqLen, modelDim] (index
   * b·heads + h). For diagnostics: `ovqAttentionReference(seq, config)` from @ovq/core replays a
   * head exactly (within float32 rounding of the projections) and returns its trace, the row each
   * token joined.
   */
  async headInputs(x: Tensor): Promise<OvqHeadInputs[]> {
    if (!this.built) {
      throw new OvqTfjsInputError(
        'OvqAttention.headInputs',
        'the layer is not built; call it (or its model) on an input first',
      );
    }
    const input = this.checkInput(x);
    const tensors = this.projections(input);
    const values = await Promise.all(tensors.map((t) => t.data()));
    const host = headViews(tensors, values as ArrayLike<number>[], this.extraKinds);
    const out: OvqHeadInputs[] = [];
    for (let b = 0; b < input.shape[0]; b++) {
      for (let h = 0; h < this.heads; h++) {
        const { q, k, v, seqLen, keyDim, valueDim, extras } = host.head(b, h);
        out.push({
          seq: { q: q.slice(), k: k.slice(), v: v.slice(), seqLen, keyDim, valueDim },
          config: { ...this.ovqConfig, beta: extras[0][0] },
        });
      }
    }
    return out;
  }

  protected mixerConfig(): serialization.ConfigDict {
    const { seed, ...rest } = this.ovqConfig;
    return { ...(rest as serialization.ConfigDict), spawnSeed: seed ?? 0, betaInit: this.betaInit };
  }
}
serialization.registerClass(OvqAttention);
