// The shared body of every mixer layer: input projections to heads, the mixer (a tfjs op during
// training, host streaming states during generation), an optional output gate and the output
// projection. Subclasses add their own weights and say how one head mixes.
import type { Tensor, Tensor3D, Tensor4D } from '@tensorflow/tfjs-core';
import {
  add,
  dispose,
  mean,
  mul,
  reshape,
  rsqrt,
  type serialization,
  sigmoid,
  square,
  tensor,
  tidy,
  transpose,
} from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable, layers } from '@tensorflow/tfjs-layers';
import { describeShape, OvqTfjsInputError } from '../errors.js';
import type { HeadData } from '../kernels/host-mixer.js';
import { explicitMatMul } from '../ops/matmul.js';
import { type ExtraKind, headViews, type MixerStreamState } from '../streaming/state.js';

export type LayerArgs = NonNullable<ConstructorParameters<typeof layers.Layer>[0]>;
type Kwargs = Parameters<layers.Layer['call']>[1];

/** Options every mixer layer takes (flat, JSON-serialisable: they are the layer's config). */
export type MixerLayerArgs = LayerArgs & {
  /** Number of heads H. */
  heads: number;
  /** Query/key width per head. */
  keyDim: number;
  /** Value width per head; default keyDim. */
  valueDim?: number;
  /** Multiply the mixer output by sigmoid(x·W_g) before the output projection; default false. */
  outputGate?: boolean;
  /**
   * RMSNorm (with a learned gain [valueDim], shared by the heads) of each head's output before
   * the gate and the output projection, as fla's layers do; default false. Reads that average
   * many values (a delta-rule state, a dictionary row's value mean) come out small next to the
   * residual stream; the norm gives them unit scale.
   */
  outputNorm?: boolean;
  /** Seed of the weight initialisers (glorot-uniform); default unseeded. */
  seed?: number;
};

/** A number option of `layer` that `ok` accepts, else an OvqTfjsInputError naming it. */
export function checkNumberArg(
  layer: string,
  argument: string,
  value: unknown,
  ok: (x: number) => boolean,
  expected: string,
): number {
  if (typeof value !== 'number' || !ok(value))
    throw new OvqTfjsInputError(
      `${layer}: ${argument}`,
      `got ${String(value)}; expected ${expected}`,
    );
  return value;
}

/** A true/false option of `layer`, else an OvqTfjsInputError naming it. */
export function checkBooleanArg(layer: string, argument: string, value: unknown): boolean {
  if (typeof value !== 'boolean')
    throw new OvqTfjsInputError(
      `${layer}: ${argument}`,
      `got ${String(value)}; expected true or false`,
    );
  return value;
}

function positiveInteger(layer: string, argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new OvqTfjsInputError(
      `${layer}: ${argument}`,
      `got ${String(value)}; expected a positive integer`,
    );
  }
  return value;
}

export abstract class MixerLayer<S> extends layers.Layer {
  readonly heads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  readonly outputGate: boolean;
  readonly outputNorm: boolean;
  readonly seed: number | undefined;
  protected modelDim = 0;
  private wq!: LayerVariable;
  private wk!: LayerVariable;
  private wv!: LayerVariable;
  private wo!: LayerVariable;
  private wg: LayerVariable | null = null;
  private outputGain: LayerVariable | null = null;

  constructor(args: MixerLayerArgs) {
    super(args);
    const name = (this.constructor as unknown as { className: string }).className;
    if (typeof args !== 'object' || args === null) {
      throw new OvqTfjsInputError(name, `got ${String(args)}; expected an options object`);
    }
    this.heads = positiveInteger(name, 'heads', args.heads);
    this.keyDim = positiveInteger(name, 'keyDim', args.keyDim);
    this.valueDim = positiveInteger(name, 'valueDim', args.valueDim ?? args.keyDim);
    this.outputGate = checkBooleanArg(name, 'outputGate', args.outputGate ?? false);
    this.outputNorm = checkBooleanArg(name, 'outputNorm', args.outputNorm ?? false);
    this.seed = args.seed;
  }

  /** Adds the subclass's own weights (called from build with the model width). */
  protected abstract buildMixer(modelDim: number): void;

  /** Extra op inputs computed from x [batch, seqLen, modelDim] or held as weights. */
  protected abstract extraInputs(x: Tensor3D): Tensor[];

  /** Whether each extra input is per token ([batch, heads, seqLen]) or per head ([heads, …]). */
  protected abstract readonly extraKinds: readonly ExtraKind[];

  /** The mixer op on [batch, heads, seqLen, dim] tensors. */
  protected abstract mix(q: Tensor4D, k: Tensor4D, v: Tensor4D, extras: Tensor[]): Tensor4D;

  /** A fresh streaming state of head h (host memory, constant size per token where the mixer is). */
  protected abstract createHeadState(head: number): S;

  /** Streams one head's tokens into its state and returns their outputs [n, valueDim]. */
  protected abstract appendHead(state: S, head: HeadData): ArrayLike<number>;

  /** Numbers one head's state holds after T tokens (ALGORITHM.md §6). */
  protected abstract headStateSize(seqLen: number): number;

  /** This layer's own options (merged into getConfig). */
  protected abstract mixerConfig(): serialization.ConfigDict;

  protected initializer(offset: number) {
    return initializers.glorotUniform({
      seed: this.seed === undefined ? undefined : this.seed + offset,
    });
  }

  override build(inputShape: (number | null)[] | (number | null)[][]): void {
    const shape = (Array.isArray(inputShape[0]) ? inputShape[0] : inputShape) as (number | null)[];
    const d = shape[shape.length - 1];
    if (shape.length !== 3 || typeof d !== 'number') {
      throw new OvqTfjsInputError(
        `${this.getClassName()}: input`,
        `has shape ${describeShape(shape as number[])}; expected [batch, seqLen, modelDim] with a known modelDim`,
      );
    }
    this.modelDim = d;
    const { heads: H, keyDim: dk, valueDim: dv } = this;
    this.wq = this.addWeight('wq', [d, H * dk], 'float32', this.initializer(0));
    this.wk = this.addWeight('wk', [d, H * dk], 'float32', this.initializer(1));
    this.wv = this.addWeight('wv', [d, H * dv], 'float32', this.initializer(2));
    this.wo = this.addWeight('wo', [H * dv, d], 'float32', this.initializer(3));
    if (this.outputGate)
      this.wg = this.addWeight('wg', [d, H * dv], 'float32', this.initializer(4));
    this.buildMixer(d);
    // After the subclass's weights, so checkpoints of layers that had it first keep their order.
    if (this.outputNorm)
      this.outputGain = this.addWeight('o_gain', [dv], 'float32', initializers.ones());
    this.built = true;
  }

  override computeOutputShape(inputShape: (number | null)[]): (number | null)[] {
    return inputShape;
  }

  /** x [batch, seqLen, modelDim] · W [modelDim, H·width] → [batch, H, seqLen, width]. */
  protected toHeads(x: Tensor3D, w: Tensor, width: number): Tensor4D {
    const [B, T, D] = x.shape;
    // explicitMatMul: tfjs's own matMul gradient hits wasm's slow transposed-operand path.
    const y = reshape(explicitMatMul(reshape(x, [B * T, D]), w), [B, T, this.heads, width]);
    return transpose(y, [0, 2, 1, 3]) as Tensor4D;
  }

  /**
   * Mixer output [batch, H, seqLen, dv] → norm → gate → output projection → [batch, seqLen,
   * modelDim] (the same for full-sequence and streaming calls).
   */
  protected fromHeads(heads: Tensor4D, x: Tensor3D): Tensor3D {
    const [B, , T] = heads.shape;
    const D = this.modelDim;
    const y = this.outputGain
      ? mul(mul(heads, rsqrt(add(mean(square(heads), -1, true), 1e-6))), this.outputGain.read())
      : heads;
    let flat = reshape(transpose(y, [0, 2, 1, 3]), [B * T, this.heads * this.valueDim]);
    if (this.wg) flat = mul(flat, sigmoid(explicitMatMul(reshape(x, [B * T, D]), this.wg.read())));
    return reshape(explicitMatMul(flat, this.wo.read()), [B, T, D]) as Tensor3D;
  }

  protected checkInput(x: Tensor): Tensor3D {
    if (x.rank !== 3 || x.shape[2] !== this.modelDim) {
      throw new OvqTfjsInputError(
        `${this.getClassName()}: input`,
        `has shape ${describeShape(x.shape)}; expected [batch, seqLen, ${this.modelDim}]`,
      );
    }
    return x as Tensor3D;
  }

  override call(inputs: Tensor | Tensor[], _kwargs: Kwargs): Tensor {
    return tidy(() => {
      const x = this.checkInput(Array.isArray(inputs) ? inputs[0] : inputs);
      const q = this.toHeads(x, this.wq.read(), this.keyDim);
      const k = this.toHeads(x, this.wk.read(), this.keyDim);
      const v = this.toHeads(x, this.wv.read(), this.valueDim);
      return this.fromHeads(this.mix(q, k, v, this.extraInputs(x)), x);
    });
  }

  /** Numbers of streaming state one sequence holds after T tokens, all heads together. */
  stateSize(seqLen: number): number {
    return this.heads * this.headStateSize(seqLen);
  }

  /** An empty streaming state for `batch` sequences (host memory, one entry per [batch, head]). */
  createState(batch: number): MixerStreamState<S> {
    positiveInteger(this.getClassName(), 'batch', batch);
    const perHead: S[] = [];
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < this.heads; h++) perHead.push(this.createHeadState(h));
    }
    return { layer: this.getClassName(), batch, heads: this.heads, position: 0, perHead };
  }

  /**
   * Streams x [batch, n, modelDim] (n ≥ 1 new tokens; one at a time for generation) through
   * `state`, which is updated in place, and returns the outputs [batch, n, modelDim]. Any split
   * of a sequence into steps gives the same outputs as one full-sequence call. Reads the new
   * tokens' projections with dataSync: on backends without synchronous reads (webgpu) use
   * `stepAsync`.
   */
  step(x: Tensor, state: MixerStreamState<S>): Tensor3D {
    const { input, tensors } = this.prepareStep(x, state, 'step');
    return this.finishStep(
      input,
      state,
      tensors,
      tensors.map((t) => t.dataSync()),
    );
  }

  /** `step` with an asynchronous read of the new tokens' projections (any backend). */
  async stepAsync(x: Tensor, state: MixerStreamState<S>): Promise<Tensor3D> {
    const { input, tensors } = this.prepareStep(x, state, 'stepAsync');
    const values = await Promise.all(tensors.map((t) => t.data()));
    return this.finishStep(input, state, tensors, values as ArrayLike<number>[]);
  }

  protected prepareStep(x: Tensor, state: MixerStreamState<S>, method: string) {
    const where = `${this.getClassName()}.${method}`;
    if (!this.built) {
      throw new OvqTfjsInputError(
        where,
        'the layer is not built; call it (or its model) on an input first',
      );
    }
    const input = this.checkInput(x);
    if (state?.layer !== this.getClassName() || state.heads !== this.heads) {
      throw new OvqTfjsInputError(
        `${where}: state`,
        `is not a state of this layer; expected the result of createState(batch)`,
      );
    }
    if (input.shape[0] !== state.batch) {
      throw new OvqTfjsInputError(
        `${where}: x`,
        `has batch ${input.shape[0]}; the state was created for batch ${state.batch}`,
      );
    }
    return { input, tensors: this.projections(input) };
  }

  /** q, k [B, H, T, dk], v [B, H, T, dv] and the mixer's extra inputs for x (new tensors). */
  protected projections(input: Tensor3D): Tensor[] {
    return tidy(() => [
      this.toHeads(input, this.wq.read(), this.keyDim),
      this.toHeads(input, this.wk.read(), this.keyDim),
      this.toHeads(input, this.wv.read(), this.valueDim),
      ...this.extraInputs(input),
    ]);
  }

  protected finishStep(
    input: Tensor3D,
    state: MixerStreamState<S>,
    tensors: Tensor[],
    values: ArrayLike<number>[],
  ): Tensor3D {
    const [B, n] = input.shape;
    const { heads: H, valueDim: dv } = this;
    const host = headViews(tensors, values, this.extraKinds);
    const out = new Float32Array(B * H * n * dv);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const y = this.appendHead(state.perHead[b * H + h], host.head(b, h));
        out.set(y, (b * H + h) * n * dv);
      }
    }
    state.position += n;
    const y = tensor(out, [B, H, n, dv]) as Tensor4D;
    const result = tidy(() => this.fromHeads(y, input));
    dispose(y);
    return result;
  }

  override getConfig(): serialization.ConfigDict {
    const own: serialization.ConfigDict = {
      heads: this.heads,
      keyDim: this.keyDim,
      valueDim: this.valueDim,
      outputGate: this.outputGate,
      outputNorm: this.outputNorm,
    };
    if (this.seed !== undefined) own.seed = this.seed;
    return { ...super.getConfig(), ...own, ...this.mixerConfig() };
  }
}
