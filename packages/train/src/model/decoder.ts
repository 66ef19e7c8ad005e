// Decoder-only model: embedding → blocks (RMSNorm → mixer → residual → RMSNorm → SwiGLU →
// residual) → RMSNorm → tied output. Vector tasks swap the embedding and the tied output for
// input and output projections. Mixers are tfjs-layers Layers supplied by a factory.
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
  seed: number;
};

export type MixerOptions = {
  window?: number;
  ropeBase?: number;
  ovqCapacity?: number;
  ovqChunkSize?: number;
  vqCodes?: number;
  kvmBudget?: number;
};

/** Anything with the tfjs-layers Layer surface the decoder needs. */
export type MixerLayer = {
  apply(x: tf.Tensor): tf.Tensor | tf.Tensor[] | unknown;
  readonly trainableWeights: { name: string; read(): tf.Tensor }[];
  stateSize?(seqLen: number): number;
  /** Streaming inference (constant memory per token where the mixer has a fixed-size state). */
  createState?(batch: number): unknown;
  step?(x: tf.Tensor, state: unknown): tf.Tensor;
  /** OVQ layers: health of each [batch, head] dictionary of a streaming state. */
  dictionaryHealth?(state: unknown): DictionaryHealthLike[];
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
    for (const [name, v] of this.own) this.variables.set(name, v);
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
    });
    this.built = true;
  }

  private rmsNorm(x: tf.Tensor, gain: tf.Tensor): tf.Tensor {
    const ms = tf.mean(tf.square(x), -1, true);
    return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, 1e-6))), gain);
  }

  /** x [B, T, D] · W [D, H] → [B, T, H] (a reshaped matMul: tfjs has no einsum gradient). */
  private dense(x: tf.Tensor, w: tf.Tensor, transposeW = false): tf.Tensor {
    const [b, t, d] = x.shape as [number, number, number];
    const out = tf.matMul(tf.reshape(x, [b * t, d]), w, false, transposeW);
    return tf.reshape(out, [b, t, out.shape[1]!]);
  }

  /** Logits [B, T, vocab] for token inputs [B, T], or predictions [B, T, outputDim] for vectors. */
  forward(inputs: tf.Tensor): tf.Tensor {
    return this.run(inputs, (l, x) => this.mixers[l].apply(x) as tf.Tensor);
  }

  /** Whether every mixer has a streaming `step` (needed for generation and dictionary health). */
  canStream(): boolean {
    return this.mixers.every((m) => m.createState !== undefined && m.step !== undefined);
  }

  /** One streaming state per layer for `batch` sequences (see `step`). */
  createStreamState(batch: number): unknown[] {
    return this.mixers.map((m, l) => {
      if (!m.createState || !m.step)
        throw new Error(`layer ${l} (${this.kinds[l]}) has no streaming step`);
      return m.createState(batch);
    });
  }

  /** Streams the next tokens [B, n] through every layer's state; same outputs as `forward`. */
  step(inputs: tf.Tensor, states: unknown[]): tf.Tensor {
    return this.run(inputs, (l, x) => this.mixers[l].step!(x, states[l]));
  }

  /**
   * Streams `inputs` through fresh states and reports each OVQ layer's dictionary health,
   * averaged over sequences and heads (min of countMin, max of countMax).
   */
  dictionaryHealth(inputs: tf.Tensor): LayerHealth[] {
    const states = this.createStreamState(inputs.shape[0]);
    tf.tidy(() => {
      this.step(inputs, states);
    });
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

  private run(inputs: tf.Tensor, mix: (layer: number, x: tf.Tensor) => tf.Tensor): tf.Tensor {
    const W = (name: string) => this.own.get(name)!;
    const tokens = this.config.vocabSize !== undefined;
    // One-hot · E rather than gather: gather's gradient needs UnsortedSegmentSum, which the wasm
    // backend lacks, and the vocabularies here are small. (wasm's float32 oneHot returns zeros:
    // build it as int32 and cast.)
    let h = tokens
      ? this.dense(tf.cast(tf.oneHot(inputs, this.config.vocabSize!), 'float32'), W('embedding'))
      : this.dense(inputs, W('input_projection'));
    for (let l = 0; l < this.kinds.length; l++) {
      const mixed = mix(l, this.rmsNorm(h, W(`block${l}.norm1`)));
      h = tf.add(h, mixed);
      const x = this.rmsNorm(h, W(`block${l}.norm2`));
      const gate = this.dense(x, W(`block${l}.mlp_gate`));
      const up = this.dense(x, W(`block${l}.mlp_up`));
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up);
      h = tf.add(h, this.dense(act, W(`block${l}.mlp_down`)));
    }
    h = this.rmsNorm(h, W('final_norm'));
    return tokens ? this.dense(h, W('embedding'), true) : this.dense(h, W('output_projection'));
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
