// Decoder-only model: embedding → blocks (RMSNorm → mixer → residual → RMSNorm → SwiGLU →
// residual) → RMSNorm → tied output. Vector tasks swap the embedding and the tied output for
// input and output projections. Mixers are tfjs-layers Layers supplied by a factory.
import type { OvqConfig, Seq } from '@ovq/core';
import { denseProduct } from '@ovq/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { Random } from '../tasks/random.js';
import { type MixerKind, mixerSchedule } from './mixers.js';

export type ModelConfig = {
  /** Token models: vocabulary size. Vector models leave it out and set inputDim/outputDim. */
  vocabSize?: number;
  inputDim?: number;
  outputDim?: number;
  dModel: number;
  heads: number;
  layers: number;
  /** Mixer pattern repeated over layers, e.g. "swa,ovq". */
  mixers: string;
  /** SwiGLU hidden width; default ⌈(8/3)·dModel / 8⌉·8. */
  mlpHidden?: number;
  /** Options passed to every mixer (window, OVQ capacity, …). */
  mixerOptions?: MixerOptions;
  /**
   * Token models: keep the seeded random embedding (and so the tied output) fixed. Recall tasks at
   * vocabulary 8,192 then only have to learn the circuit, not 8,192 rarely seen rows; the table is
   * rebuilt from the seed, so checkpoints do not store it.
   */
  freezeEmbedding?: boolean;
  seed: number;
};

export type MixerOptions = {
  window?: number;
  ropeBase?: number;
  ovqCapacity?: number;
  ovqChunkSize?: number;
  /** OVQ's algorithm axes (the trained ablations); @ovq/core's defaults when absent. */
  ovqGrowth?: OvqConfig['growth'];
  ovqSpawn?: OvqConfig['spawn'];
  ovqUpdate?: OvqConfig['update'];
  /** OVQ's novelty spawn (@ovq/core `spawnDistance`, an extension); off when absent. */
  ovqSpawnDistance?: OvqConfig['spawnDistance'];
  vqCodes?: number;
  /**
   * Transformer-VQ's dead-code restart threshold, in keys per step (@ovq/tfjs VqAttention's
   * deadCodeThreshold). The trainer's default is 2 (as EnCodec trains its codebooks): with the
   * paper's recipe (0, no restarts) the codebook of a T = 512 NIAH model collapsed onto one code.
   */
  vqDeadCodeThreshold?: number;
  /**
   * Transformer-VQ's logit scale β (@ovq/tfjs VqAttention's `beta`); default 1/√headDim. Its
   * LayerNorm-ed queries and keys have norm √headDim, so logits are at most β·headDim
   * (≈ 5.7 at head dim 32 with the default).
   */
  vqBeta?: number;
  /**
   * Transformer-VQ's keys older than the previous block learn from the queries that read their
   * cache row (@ovq/tfjs VqAttention's `cacheKeyGradient`); default false, the paper's path.
   */
  vqCacheKeyGradient?: boolean;
  kvmBudget?: number;
  /**
   * Initial bias b of the decay gate of the decay and gdn layers, α = exp(−softplus(x·W + b)):
   * −3 (the layers' default) starts every head at α ≈ 0.95 (a memory of ~20 tokens), −7 at
   * α ≈ 0.999 (~1,000 tokens).
   */
  decayBiasInit?: number;
  /**
   * Initial bias of the gdn layer's writing strength β = sigmoid(x·W + b): 0 (the layer's
   * default) writes every token at β ≈ 0.5, −3 at β ≈ 0.05 (old memories erased less).
   */
  gdnWriteBiasInit?: number;
  /** RMSNorm each gdn head's output before the output projection, as fla does (default false). */
  gdnOutputNorm?: boolean;
  /**
   * The same output RMSNorm on the ovq layer (default false): a dictionary row's value mean
   * averages many tokens' values, so its read comes out small next to the residual stream.
   */
  ovqOutputNorm?: boolean;
  /** The same output RMSNorm on the kvm layer (default false). */
  kvmOutputNorm?: boolean;
};

/**
 * Activation patching (diagnostics): after block `afterLayer`, the residual stream at the
 * positions where `mask` [B, T] is 1 is replaced by the stream of the same model run on `source`
 * (token ids shaped like the inputs), and the blocks above read the mixture. With sliding-window
 * blocks below, this removes what one span of tokens wrote into its neighbours and nothing else.
 */
export type ResidualPatch = { afterLayer: number; source: tf.Tensor; mask: tf.Tensor };

/** Anything with the tfjs-layers Layer surface the decoder needs. */
export type MixerLayer = {
  /** `kwargs.training` is true in training steps (see Decoder.trainingForward). */
  apply(x: tf.Tensor, kwargs?: { training?: boolean }): tf.Tensor | tf.Tensor[] | unknown;
  readonly trainableWeights: { name: string; read(): tf.Tensor }[];
  /** State learned outside the gradient (Transformer-VQ's EMA codebook): checkpointed too. */
  readonly nonTrainableWeights?: { name: string; read(): tf.Tensor }[];
  /** Loss term of the last training call added to the task loss (Transformer-VQ's commitment). */
  auxiliaryLoss?(): tf.Scalar | null;
  /** After the optimizer step: applies (or, for a skipped step, drops) non-gradient updates. */
  endTrainingStep?(applied: boolean): unknown;
  stateSize?(seqLen: number): number;
  /** Streaming inference (constant memory per token where the mixer has a fixed-size state). */
  createState?(batch: number): unknown;
  step?(x: tf.Tensor, state: unknown): tf.Tensor;
  /** `step` with asynchronous reads: the only streaming path on webgpu. */
  stepAsync?(x: tf.Tensor, state: unknown): Promise<tf.Tensor>;
  /** OVQ layers: health of each [batch, head] dictionary of a streaming state. */
  dictionaryHealth?(state: unknown): DictionaryHealthLike[];
  /** Transformer-VQ layers: usage of each head's codebook (EMA cluster sizes). */
  codebookHealth?(): Promise<CodebookHealthLike[]>;
  /** OVQ layers: reads a GPU-resident streaming state (webgpu stepAsync) back to the host. */
  moveStateToHost?(state: unknown): Promise<void>;
  /** OVQ layers: each [batch, head]'s op inputs for x, replayable by @ovq/core's reference. */
  headInputs?(x: tf.Tensor): Promise<{ seq: Seq; config: OvqConfig }[]>;
};

/** The dictionary-health fields the decoder averages (see @ovq/tfjs `dictionaryHealth`). */
export type DictionaryHealthLike = {
  size: number;
  capacity: number;
  countMin: number;
  countMean: number;
  countMax: number;
  normalizedEntropy: number;
  neverUpdated: number;
};

/** One OVQ layer's dictionary health averaged over the batch and heads. */
export type LayerHealth = DictionaryHealthLike & { layer: number; kind: MixerKind };

/** The codebook-usage fields the decoder averages (see @ovq/tfjs `VqCodebookHealth`). */
export type CodebookHealthLike = {
  codes: number;
  countMin: number;
  countMean: number;
  countMax: number;
  normalizedEntropy: number;
  dead: number;
};

/** One VQ layer's codebook usage averaged over heads (min of countMin, max of countMax). */
export type CodebookLayerHealth = CodebookHealthLike & { layer: number; kind: MixerKind };

export type MixerFactory = (
  kind: MixerKind,
  dims: { dModel: number; heads: number; layerIndex: number },
  options: MixerOptions,
) => MixerLayer;

function seededMatrix(rng: Random, rows: number, cols: number, std: number): tf.Variable {
  const values = Float32Array.from({ length: rows * cols }, () => rng.normal() * std);
  return tf.variable(tf.tensor2d(values, [rows, cols]), true);
}

export class Decoder {
  readonly config: ModelConfig;
  readonly kinds: MixerKind[];
  readonly mixers: MixerLayer[];
  /** Every trainable variable by a stable name (checkpoint and optimizer keys). */
  readonly variables = new Map<string, tf.Variable>();
  /** Non-trainable mixer state by a stable name (checkpointed, never given to the optimizer). */
  readonly buffers = new Map<string, tf.Variable>();
  private training = false;
  private readonly own = new Map<string, tf.Variable>();
  private built = false;

  constructor(config: ModelConfig, createMixer: MixerFactory) {
    this.config = config;
    const { dModel, heads, layers } = config;
    if (!Number.isInteger(dModel) || dModel % heads !== 0) {
      throw new Error(`dModel: got ${dModel}; expected a multiple of heads = ${heads}`);
    }
    const tokens = config.vocabSize !== undefined;
    if (!tokens && (config.inputDim === undefined || config.outputDim === undefined)) {
      throw new Error(
        'model: set vocabSize (token tasks) or inputDim and outputDim (vector tasks)',
      );
    }
    this.kinds = mixerSchedule(config.mixers, layers);
    const rng = new Random(config.seed);
    const hidden = config.mlpHidden ?? Math.ceil(((8 / 3) * dModel) / 8) * 8;
    const add = (name: string, v: tf.Variable) => this.own.set(name, v);
    if (tokens)
      add('embedding', seededMatrix(rng, config.vocabSize!, dModel, 0.02 * Math.sqrt(dModel)));
    else {
      add(
        'input_projection',
        seededMatrix(rng, config.inputDim!, dModel, 1 / Math.sqrt(config.inputDim!)),
      );
      add('output_projection', seededMatrix(rng, dModel, config.outputDim!, 1 / Math.sqrt(dModel)));
    }
    for (let l = 0; l < layers; l++) {
      add(`block${l}.norm1`, tf.variable(tf.ones([dModel]), true));
      add(`block${l}.norm2`, tf.variable(tf.ones([dModel]), true));
      add(`block${l}.mlp_gate`, seededMatrix(rng, dModel, hidden, 1 / Math.sqrt(dModel)));
      add(`block${l}.mlp_up`, seededMatrix(rng, dModel, hidden, 1 / Math.sqrt(dModel)));
      add(
        `block${l}.mlp_down`,
        seededMatrix(rng, hidden, dModel, 1 / Math.sqrt(hidden) / Math.sqrt(2 * layers)),
      );
    }
    add('final_norm', tf.variable(tf.ones([dModel]), true));
    this.mixers = this.kinds.map((kind, layerIndex) =>
      createMixer(kind, { dModel, heads, layerIndex }, config.mixerOptions ?? {}),
    );
  }

  /** Builds the mixer layers (their weights exist only after a first call) and names all variables. */
  build(seqLen = 8): void {
    if (this.built) return;
    tf.tidy(() => {
      const probe =
        this.config.vocabSize !== undefined
          ? tf.zeros([1, seqLen], 'int32')
          : tf.zeros([1, seqLen, this.config.inputDim!]);
      this.forward(probe);
    });
    for (const [name, v] of this.own)
      if (!(name === 'embedding' && this.config.freezeEmbedding)) this.variables.set(name, v);
    const rng = new Random(this.config.seed ^ 0x5bd1e995);
    this.mixers.forEach((layer, l) => {
      for (const w of layer.trainableWeights) {
        const variable = w.read() as tf.Variable;
        // Re-initialise matrices from the model seed so runs are reproducible across backends.
        if (variable.rank === 2) {
          const [rows, cols] = variable.shape as [number, number];
          const values = Float32Array.from(
            { length: rows * cols },
            () => rng.normal() / Math.sqrt(rows),
          );
          variable.assign(tf.tensor2d(values, [rows, cols]));
        }
        this.variables.set(`block${l}.${this.kinds[l]}.${w.name.split('/').pop()}`, variable);
      }
      for (const w of layer.nonTrainableWeights ?? []) {
        const name = `block${l}.${this.kinds[l]}.${w.name.split('/').pop()}`;
        this.buffers.set(name, w.read() as tf.Variable);
      }
    });
    this.built = true;
  }

  private rmsNorm(x: tf.Tensor, gain: tf.Tensor): tf.Tensor {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, 1e-6))), gain);
  }

  /**
   * x [B, T, D] · W [D, H] → [B, T, H] (· Wᵀ when `transposeW`). @ovq/tfjs's denseProduct keeps
   * every product of the forward and the gradient untransposed: tfjs-wasm's transposed matMul is
   * ~15× slower and tfjs's own matMul gradient uses it.
   */
  private dense(x: tf.Tensor, w: tf.Tensor, transposeW = false): tf.Tensor {
    return denseProduct(x, w, transposeW);
  }

  /** Logits [B, T, vocab] for token inputs [B, T], or predictions [B, T, outputDim] for vectors. */
  forward(inputs: tf.Tensor): tf.Tensor {
    return this.head(this.residualStream(inputs));
  }

  /**
   * The residual stream [B, T, D] after blocks 0 … `upTo` − 1 (every block by default), with
   * `patch` applied after its block (activation patching).
   */
  private residualStream(
    inputs: tf.Tensor,
    patch?: ResidualPatch,
    upTo = this.kinds.length,
  ): tf.Tensor {
    if (patch) this.checkPatch(inputs, patch);
    let h = this.embed(inputs);
    for (let l = 0; l < upTo; l++) {
      h = this.afterMixer(l, h, this.mixerCall(l, this.mixerInput(l, h)));
      if (patch?.afterLayer === l) {
        const source = this.residualStream(patch.source, undefined, l + 1);
        const m = tf.expandDims(tf.cast(patch.mask, 'float32'), -1);
        h = tf.add(tf.mul(h, tf.sub(1, m)), tf.mul(source, m));
      }
    }
    return h;
  }

  private checkPatch(inputs: tf.Tensor, patch: ResidualPatch): void {
    const { afterLayer, source, mask } = patch;
    if (!Number.isInteger(afterLayer) || afterLayer < 0 || afterLayer >= this.kinds.length)
      throw new Error(
        `patch.afterLayer: got ${afterLayer}; expected an integer in [0, ${this.kinds.length})`,
      );
    const same = (a: number[], b: number[]) =>
      a.length === b.length && a.every((d, i) => d === b[i]);
    if (!same(source.shape, inputs.shape))
      throw new Error(
        `patch.source: shape [${source.shape}]; expected the inputs' [${inputs.shape}]`,
      );
    const bt = inputs.shape.slice(0, 2);
    if (!same(mask.shape, bt))
      throw new Error(`patch.mask: shape [${mask.shape}]; expected [batch, time] = [${bt}]`);
  }

  /**
   * What the mixer of `layer` reads for `inputs`: the normalised residual stream [B, T, D] of
   * the blocks before it (a new tensor; for diagnostics such as `traceNeedles`), with `patch`
   * applied if it comes after a block below `layer`.
   */
  layerInput(inputs: tf.Tensor, layer: number, patch?: ResidualPatch): tf.Tensor {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.kinds.length)
      throw new Error(`layer: got ${layer}; expected an integer in [0, ${this.kinds.length})`);
    return tf.tidy(() => this.mixerInput(layer, this.residualStream(inputs, patch, layer)));
  }

  /**
   * Logits (or predictions) [S, out] at S flat positions `b·T + t` only. MQAR and NIAH score a
   * few positions per sequence, so skipping the vocabulary-wide head elsewhere is most of a
   * step's work at vocabulary 8,192. Rows are picked by the embedding's gather (`gatherRows`).
   * `patch` (diagnostics) replaces part of the residual stream after one block.
   */
  forwardAt(inputs: tf.Tensor, positions: Int32Array, patch?: ResidualPatch): tf.Tensor {
    const h = this.residualStream(inputs, patch);
    const rows = (h.shape[0] as number) * (h.shape[1] as number);
    positions.forEach((p, i) => {
      if (!Number.isInteger(p) || p < 0 || p >= rows)
        throw new Error(`positions[${i}]: got ${p}; expected an integer in [0, ${rows})`);
    });
    const picked = gatherRows(
      tf.reshape(h, [rows, h.shape[2] as number]),
      tf.tensor1d(positions, 'int32'),
    );
    return this.head(picked);
  }

  /**
   * Runs `f` (a forward and its loss) as a training step's forward: mixers are called with
   * `training: true`, so those with training-time terms record them (auxiliaryLoss, and the
   * update endTrainingStep applies).
   */
  trainingForward<R>(f: () => R): R {
    this.training = true;
    try {
      return f();
    } finally {
      this.training = false;
    }
  }

  /** Σ of the mixers' auxiliary losses of the last training forward; null when none has one. */
  auxiliaryLoss(): tf.Scalar | null {
    const terms = this.mixers
      .map((m) => m.auxiliaryLoss?.() ?? null)
      .filter((t): t is tf.Scalar => t !== null);
    return terms.length === 0 ? null : (tf.addN(terms) as tf.Scalar);
  }

  /** After the optimizer step (`applied`) or a skipped one: each mixer's non-gradient update. */
  endTrainingStep(applied: boolean): void {
    for (const m of this.mixers) m.endTrainingStep?.(applied);
  }

  private mixerCall(l: number, x: tf.Tensor): tf.Tensor {
    return this.mixers[l].apply(x, this.training ? { training: true } : undefined) as tf.Tensor;
  }

  /** Whether every mixer can stream (needed for generation and dictionary health). */
  canStream(): boolean {
    return this.mixers.every(
      (m) => m.createState !== undefined && (m.step !== undefined || m.stepAsync !== undefined),
    );
  }

  /** One streaming state per layer for `batch` sequences (see `step`). */
  createStreamState(batch: number): unknown[] {
    return this.mixers.map((m, l) => {
      if (!m.createState || !(m.step || m.stepAsync))
        throw new Error(`layer ${l} (${this.kinds[l]}) has no streaming step`);
      return m.createState(batch);
    });
  }

  /**
   * Streams the next tokens [B, n] through every layer's state; same outputs as `forward`.
   * Mixers read their projections synchronously: on webgpu use `stepAsync`.
   */
  step(inputs: tf.Tensor, states: unknown[]): tf.Tensor {
    return tf.tidy(() => {
      let h = this.embed(inputs);
      for (let l = 0; l < this.kinds.length; l++) {
        const step = this.mixers[l].step;
        if (!step) throw new Error(`layer ${l} (${this.kinds[l]}) has only stepAsync`);
        h = this.afterMixer(l, h, step.call(this.mixers[l], this.mixerInput(l, h), states[l]));
      }
      return this.head(h);
    });
  }

  /** `step` on any backend: each mixer's reads are awaited. Same outputs as `step` on cpu. */
  async stepAsync(inputs: tf.Tensor, states: unknown[]): Promise<tf.Tensor> {
    // tidy cannot span an await: each layer is tidied in two halves around its mixer.
    let h = tf.tidy(() => this.embed(inputs));
    for (let l = 0; l < this.kinds.length; l++) {
      const mixer = this.mixers[l];
      const normed = tf.tidy(() => this.mixerInput(l, h));
      const mixed = mixer.stepAsync
        ? await mixer.stepAsync(normed, states[l])
        : mixer.step!(normed, states[l]);
      normed.dispose();
      const next = tf.tidy(() => this.afterMixer(l, h, mixed));
      h.dispose();
      mixed.dispose();
      h = next;
    }
    const out = tf.tidy(() => this.head(h));
    h.dispose();
    return out;
  }

  /**
   * Streams `inputs` through fresh states and reports each OVQ layer's dictionary health,
   * averaged over sequences and heads (min of countMin, max of countMax).
   */
  async codebookHealth(): Promise<CodebookLayerHealth[]> {
    const out: CodebookLayerHealth[] = [];
    for (const [layer, m] of this.mixers.entries()) {
      const heads = await m.codebookHealth?.();
      if (!heads || heads.length === 0) continue;
      const mean = (key: keyof CodebookHealthLike) =>
        heads.reduce((a, h) => a + h[key], 0) / heads.length;
      out.push({
        layer,
        kind: this.kinds[layer],
        codes: heads[0].codes,
        countMin: Math.min(...heads.map((h) => h.countMin)),
        countMean: mean('countMean'),
        countMax: Math.max(...heads.map((h) => h.countMax)),
        normalizedEntropy: mean('normalizedEntropy'),
        dead: mean('dead'),
      });
    }
    return out;
  }

  async dictionaryHealth(inputs: tf.Tensor): Promise<LayerHealth[]> {
    const states = this.createStreamState(inputs.shape[0]);
    (await this.stepAsync(inputs, states)).dispose();
    // webgpu keeps OVQ dictionaries on the GPU while streaming: read them back first.
    for (const [l, m] of this.mixers.entries()) await m.moveStateToHost?.(states[l]);
    const out: LayerHealth[] = [];
    this.mixers.forEach((m, layer) => {
      const heads = m.dictionaryHealth?.(states[layer]);
      if (!heads || heads.length === 0) return;
      const mean = (key: keyof DictionaryHealthLike) =>
        heads.reduce((a, h) => a + h[key], 0) / heads.length;
      out.push({
        layer,
        kind: this.kinds[layer],
        size: mean('size'),
        capacity: heads[0].capacity,
        countMin: Math.min(...heads.map((h) => h.countMin)),
        countMean: mean('countMean'),
        countMax: Math.max(...heads.map((h) => h.countMax)),
        normalizedEntropy: mean('normalizedEntropy'),
        neverUpdated: mean('neverUpdated'),
      });
    });
    return out;
  }

  private weight(name: string): tf.Variable {
    return this.own.get(name)!;
  }

  /** Token or vector inputs → the residual stream [B, T, dModel]. */
  private embed(inputs: tf.Tensor): tf.Tensor {
    return this.config.vocabSize !== undefined
      ? embedTokens(inputs, this.weight('embedding'))
      : this.dense(inputs, this.weight('input_projection'));
  }

  // Block l is h + mixer(norm(h)), then + SwiGLU(norm(·)); split at the mixer so streaming can
  // await it.
  private mixerInput(l: number, h: tf.Tensor): tf.Tensor {
    return this.rmsNorm(h, this.weight(`block${l}.norm1`));
  }

  private afterMixer(l: number, h: tf.Tensor, mixed: tf.Tensor): tf.Tensor {
    const residual = tf.add(h, mixed);
    const x = this.rmsNorm(residual, this.weight(`block${l}.norm2`));
    const gate = this.dense(x, this.weight(`block${l}.mlp_gate`));
    const up = this.dense(x, this.weight(`block${l}.mlp_up`));
    const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
    return tf.add(residual, this.dense(act, this.weight(`block${l}.mlp_down`)));
  }

  /** The residual stream → logits (tied embedding) or vector predictions. */
  private head(h: tf.Tensor): tf.Tensor {
    const normed = this.rmsNorm(h, this.weight('final_norm'));
    return this.config.vocabSize !== undefined
      ? this.dense(normed, this.weight('embedding'), true)
      : this.dense(normed, this.weight('output_projection'));
  }

  /** Numbers each mixer holds in memory after `seqLen` tokens (where the layer reports it). */
  stateSize(seqLen: number): number[] {
    return this.mixers.map((m) => m.stateSize?.(seqLen) ?? Number.NaN);
  }

  parameterCount(): number {
    let n = 0;
    for (const v of this.variables.values()) n += v.size;
    return n;
  }

  dispose(): void {
    for (const v of this.own.values()) v.dispose();
  }
}

/** Rows of E [V, D] for token ids [B, T] → [B, T, D] (the gather below). */
export function embedTokens(ids: tf.Tensor, table: tf.Tensor): tf.Tensor {
  return gatherRows(table, ids);
}

/**
 * Rows of table [V, D] at integer ids of any shape → [...ids.shape, D]: a gather forward and a
 * scatter-add (tfjs's scatterND sums repeated ids) for the table's gradient. tfjs's own gather
 * gradient needs UnsortedSegmentSum, which the wasm backend lacks, and a one-hot product costs
 * 2·ids·V·D FLOPs each way (most of a step at vocabulary 8,192).
 */
function gatherRows(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  const [vocab, width] = table.shape as [number, number];
  const lookup = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [idx, e, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    const flat = tf.reshape(idx, [-1]);
    save([flat]);
    return {
      value: tf.reshape(tf.gather(e, flat), [...idx.shape, width]),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => [
        tf.zerosLike(idx),
        tf.scatterND(tf.reshape(saved[0], [-1, 1]), tf.reshape(dy as tf.Tensor, [-1, width]), [
          vocab,
          width,
        ]),
      ],
    };
  });
  return lookup(tf.cast(ids, 'int32'), table);
}
