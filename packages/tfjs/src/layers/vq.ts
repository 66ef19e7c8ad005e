// Transformer-VQ attention layer (Lingle 2023): keys are quantised to a per-head codebook
// [heads, codebookSize, keyDim] learned as the paper does, by EMA k-means on the keys rather than
// by gradient. The attention sees the codebook through a stop-gradient (keys get theirs
// straight-through), and a commitment loss β_c·‖k − sg(c_z)‖² pulls keys towards their codes.
// A training call (`apply(x, { training: true })`) records the batch's k-means statistics and the
// commitment loss; the training loop adds `auxiliaryLoss()` to its loss and calls
// `endTrainingStep()` after the optimizer step, which moves the EMA statistics (see README).
import {
  createVqState,
  VQ_EMA_DEFAULTS,
  type VqConfig,
  type VqState,
  vqAppend,
  vqStateSize,
} from '@ovq/baselines';
import {
  add,
  broadcastTo,
  dispose,
  div,
  expandDims,
  fill,
  gather,
  keep,
  less,
  matMul,
  mean,
  mul,
  reshape,
  rsqrt,
  type Scalar,
  serialization,
  square,
  sub,
  sum,
  type Tensor,
  type Tensor3D,
  type Tensor4D,
  tensor1d,
  tidy,
  topk,
  transpose,
  where,
} from '@tensorflow/tfjs-core';
import { initializers, type LayerVariable } from '@tensorflow/tfjs-layers';
import { constantOf } from '../compositions/shared.js';
import { nearestCodeOneHot } from '../compositions/vq.js';
import type { HeadData } from '../kernels/host-mixer.js';
import { vqAttention } from '../ops/baselines.js';
import type { ExtraKind } from '../streaming/state.js';
import { checkBooleanArg, checkNumberArg, MixerLayer, type MixerLayerArgs } from './base.js';

export type VqAttentionArgs = MixerLayerArgs & {
  /** Number of codes S per head. */
  codebookSize: number;
  /** Block length L (a query reads its own and the previous block exactly); default 64. */
  blockLength?: number;
  /** Logit scale; default 1/√keyDim. */
  beta?: number | null;
  /** Weight β_c of the commitment loss β_c·‖k − sg(c_z)‖²; default 1e-4 (the paper's). */
  commitment?: number;
  /**
   * Let keys older than the previous block learn from the queries that read their cache row (an
   * equal share of the row's logit gradient each; same outputs). Default false, the paper's
   * gradient path, in which such keys get no attention gradient. See @ovq/baselines' VqConfig.
   */
  cacheKeyGradient?: boolean;
  /** EMA decay γ of the codebook's k-means statistics; default 0.99 (the paper's). */
  codebookDecay?: number;
  /** Laplace smoothing ε of the cluster sizes; default 1e-5. */
  codebookEpsilon?: number;
  /**
   * LayerNorm (no gain or bias) of each head's queries and keys before the attention and the
   * quantiser, as in the paper; default true. Centred, unit-variance keys keep k-means from
   * collapsing onto a few codes while the keys drift in training.
   */
  normalize?: boolean;
  /**
   * Dead-code restart: after each EMA step, a code whose running size n_j is under this many keys
   * per step restarts at one of that step's worst-fitted keys (n_j = threshold, m_j = threshold·k), as EnCodec
   * and SoundStream train their codebooks; default 0, none (the paper's recipe). See
   * @ovq/baselines' vqRestartDeadCodes.
   */
  deadCodeThreshold?: number;
};

type Kwargs = Parameters<MixerLayer<VqState>['call']>[1];

/** Usage of one head's codebook, from its EMA cluster sizes n_j (the recent keys per code). */
export type VqCodebookHealth = {
  codes: number;
  countMin: number;
  countMean: number;
  countMax: number;
  /** Entropy of the usage n_j / Σn, divided by ln codes (1: every code used equally). */
  normalizedEntropy: number;
  /** Codes whose size fell under 1% of an even share (Σn / codes): as good as unused. */
  dead: number;
};

/** What a training call leaves for the step's end: the commitment loss and k-means statistics. */
type Pending = { loss: Scalar; counts: Tensor; sums: Tensor; candidates: Tensor | null };

/**
 * The keys dead codes restart at, [H, S, dk]: per head, the batch's keys the codebook fits worst
 * (largest ‖k − c_z‖², `distances` [B, H, T]), the worst for code 0, the next for code 1, …
 * (cycling when S exceeds the batch's keys). Chosen from the data, not drawn at random, so a
 * resumed run restarts exactly as an uninterrupted one.
 */
function restartCandidates(k: Tensor4D, distances: Tensor, S: number): Tensor {
  const [B, H, T, dk] = k.shape;
  return tidy(() => {
    const rows = reshape(transpose(k, [1, 0, 2, 3]), [H, B * T, dk]);
    const errors = reshape(transpose(distances, [1, 0, 2]), [H, B * T]);
    const n = Math.min(S, B * T);
    let picks = topk(errors, n).indices;
    if (n < S)
      picks = gather(
        picks,
        tensor1d(
          Array.from({ length: S }, (_, j) => j % n),
          'int32',
        ),
        1,
      );
    return gather(rows, picks, 1, 1);
  });
}

function checkRange(name: string, value: unknown, ok: (x: number) => boolean, expected: string) {
  return checkNumberArg('VqAttention', name, value, ok, expected);
}

export class VqAttention extends MixerLayer<VqState> {
  static className = 'VqAttention';
  readonly config: VqConfig;
  readonly commitment: number;
  readonly codebookDecay: number;
  readonly codebookEpsilon: number;
  readonly normalize: boolean;
  readonly deadCodeThreshold: number;
  protected readonly extraKinds: readonly ExtraKind[] = ['perHead'];
  private codeSums!: LayerVariable;
  private codeCounts!: LayerVariable;
  private training = false;
  private pending: Pending | null = null;

  constructor(args: VqAttentionArgs) {
    super(args);
    const config: VqConfig = { codebookSize: args.codebookSize };
    if (args.blockLength != null) config.blockLength = args.blockLength;
    if (args.beta != null) config.beta = args.beta;
    if (checkBooleanArg('VqAttention', 'cacheKeyGradient', args.cacheKeyGradient ?? false))
      config.cacheKeyGradient = true;
    createVqState({ keyDim: this.keyDim, valueDim: this.valueDim }, config);
    this.config = config;
    this.commitment = checkRange(
      'commitment',
      args.commitment ?? VQ_EMA_DEFAULTS.commitment,
      (x) => x >= 0 && Number.isFinite(x),
      'a finite number ≥ 0',
    );
    this.codebookDecay = checkRange(
      'codebookDecay',
      args.codebookDecay ?? VQ_EMA_DEFAULTS.decay,
      (x) => x >= 0 && x < 1,
      'a number in [0, 1)',
    );
    this.codebookEpsilon = checkRange(
      'codebookEpsilon',
      args.codebookEpsilon ?? VQ_EMA_DEFAULTS.epsilon,
      (x) => x > 0 && Number.isFinite(x),
      'a finite number > 0',
    );
    this.normalize = checkBooleanArg('VqAttention', 'normalize', args.normalize ?? true);
    this.deadCodeThreshold = checkRange(
      'deadCodeThreshold',
      args.deadCodeThreshold ?? 0,
      (x) => x >= 0 && Number.isFinite(x),
      'a finite number ≥ 0',
    );
  }

  /**
   * The head projections; with `normalize`, queries and keys are LayerNorm-ed (centred, unit
   * variance over keyDim, ε 1e-6) here, so the full-sequence call and streaming see equal values.
   */
  protected override toHeads(x: Tensor3D, w: Tensor, width: number): Tensor4D {
    const y = super.toHeads(x, w, width);
    if (!this.normalize || this.isValueProjection(w)) return y;
    return tidy(() => {
      const centred = sub(y, mean(y, -1, true));
      return mul(centred, rsqrt(add(mean(square(centred), -1, true), 1e-6))) as Tensor4D;
    });
  }

  private isValueProjection(w: Tensor): boolean {
    return this.trainableWeights.some((v) => v.originalName.endsWith('/wv') && v.read() === w);
  }

  protected buildMixer(): void {
    const S = this.config.codebookSize;
    // EMA statistics (not trained by gradient): sizes start at 1, so the first codebook is the
    // sums' random init; the codewords then move to the means of the keys they quantise.
    this.codeSums = this.addWeight(
      'code_sums',
      [this.heads, S, this.keyDim],
      'float32',
      initializers.randomNormal({ mean: 0, stddev: 0.5, seed: this.seed }),
      undefined,
      false,
    );
    this.codeCounts = this.addWeight(
      'code_counts',
      [this.heads, S],
      'float32',
      initializers.ones(),
      undefined,
      false,
    );
  }

  /**
   * The codebook [heads, codebookSize, keyDim] the EMA statistics stand for: c_j = m_j / ñ_j with
   * Laplace-smoothed sizes ñ_j = (n_j + ε)/(N + S·ε)·N, N = Σ_j n_j (@ovq/baselines'
   * vqCodebookFromStats in float32).
   */
  codebook(): Tensor {
    return tidy(() => {
      const counts = this.codeCounts.read();
      const total = sum(counts, -1, true);
      const eps = this.codebookEpsilon;
      const smoothed = mul(
        div(add(counts, eps), add(total, this.config.codebookSize * eps)),
        total,
      );
      return div(this.codeSums.read(), expandDims(smoothed, -1));
    });
  }

  protected extraInputs(): Tensor[] {
    // Stop-gradient: the attention loss never reaches the codebook (nor its statistics).
    return [constantOf(() => this.codebook())];
  }

  override call(inputs: Tensor | Tensor[], kwargs: Kwargs): Tensor {
    this.training = kwargs?.training === true;
    try {
      return super.call(inputs, kwargs);
    } finally {
      this.training = false;
    }
  }

  protected mix(q: Tensor4D, k: Tensor4D, v: Tensor4D, extras: Tensor[]): Tensor4D {
    if (this.training) this.recordTrainingCall(k, extras[0]);
    return vqAttention(q, k, v, extras[0], this.config);
  }

  /**
   * Keeps the commitment loss (with its gradient to k), the batch's k-means statistics and, with
   * dead-code restarts on, the keys endTrainingStep restarts dead codes at.
   */
  private recordTrainingCall(k: Tensor4D, codebook: Tensor): void {
    this.dropPending();
    const [B, H, T, dk] = k.shape;
    const S = this.config.codebookSize;
    const pending = tidy(() => {
      const cb = broadcastTo(expandDims(codebook, 0), [B, H, S, dk]);
      const oneHot = constantOf(() => nearestCodeOneHot(k, cb));
      const quantised = constantOf(() => matMul(oneHot, cb));
      const residual = square(sub(k, quantised));
      // Σ over heads and key dims, mean over batch and positions (the paper's l_commit).
      const loss = mul(sum(residual), this.commitment / (B * T)) as Scalar;
      const counts = sum(oneHot, [0, 2]);
      const sums = constantOf(() => sum(matMul(oneHot, k, true, false), 0));
      if (!(this.deadCodeThreshold > 0)) return { loss, counts, sums };
      const distances = constantOf(() => sum(residual, -1));
      return { loss, counts, sums, candidates: restartCandidates(k, distances, S) };
    });
    this.pending = {
      loss: keep(pending.loss),
      counts: keep(pending.counts),
      sums: keep(pending.sums),
      candidates: pending.candidates ? keep(pending.candidates) : null,
    };
  }

  private dropPending(): void {
    if (this.pending) dispose(Object.values(this.pending).filter((t): t is Tensor => t !== null));
    this.pending = null;
  }

  /**
   * β_c·(commitment loss) of the last training call, a scalar with its gradient to the keys (the
   * layer keeps it until endTrainingStep); null when no training call is pending.
   */
  auxiliaryLoss(): Scalar | null {
    return this.pending?.loss ?? null;
  }

  /**
   * Ends a training step: with `applied` (default), one EMA k-means step on the keys of the last
   * training call, n ← γn + (1 − γ)·counts, m ← γm + (1 − γ)·sums; without it (a skipped step)
   * the statistics are dropped. Returns whether the codebook moved.
   */
  endTrainingStep(applied = true): boolean {
    const p = this.pending;
    if (!p) return false;
    this.pending = null;
    if (applied) {
      const g = this.codebookDecay;
      const threshold = this.deadCodeThreshold;
      tidy(() => {
        let counts = add(mul(this.codeCounts.read(), g), mul(p.counts, 1 - g));
        let sums = add(mul(this.codeSums.read(), g), mul(p.sums, 1 - g));
        if (p.candidates) {
          // Dead-code restart (vqRestartDeadCodes): codes under the threshold start again at
          // their candidate key, with size = threshold and sum = threshold·key.
          const dead = less(counts, threshold);
          counts = where(dead, fill(counts.shape, threshold), counts);
          sums = where(
            broadcastTo(expandDims(dead, -1), sums.shape),
            mul(p.candidates, threshold),
            sums,
          );
        }
        this.codeCounts.write(counts);
        this.codeSums.write(sums);
      });
    }
    dispose(Object.values(p).filter((t): t is Tensor => t !== null));
    return applied;
  }

  /** Codebook usage per head (reads the EMA sizes asynchronously: works on every backend). */
  async codebookHealth(): Promise<VqCodebookHealth[]> {
    const S = this.config.codebookSize;
    const counts = await this.codeCounts.read().data();
    return Array.from({ length: this.heads }, (_, h) => {
      const n = Array.from(counts.subarray(h * S, (h + 1) * S));
      const total = n.reduce((a, b) => a + b, 0);
      let entropy = 0;
      for (const x of n) if (x > 0) entropy -= (x / total) * Math.log(x / total);
      return {
        codes: S,
        countMin: Math.min(...n),
        countMean: total / S,
        countMax: Math.max(...n),
        normalizedEntropy: S > 1 ? entropy / Math.log(S) : 1,
        dead: n.filter((x) => x < (0.01 * total) / S).length,
      };
    });
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
      cacheKeyGradient: this.config.cacheKeyGradient ?? false,
      commitment: this.commitment,
      codebookDecay: this.codebookDecay,
      codebookEpsilon: this.codebookEpsilon,
      normalize: this.normalize,
      deadCodeThreshold: this.deadCodeThreshold,
    };
  }

  override dispose() {
    this.dropPending();
    return super.dispose();
  }
}
serialization.registerClass(VqAttention);
