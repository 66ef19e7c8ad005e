// Baseline mixers from @ovq/baselines: each fast path (tiled / chunked / blocked Float32) checked
// against the package's own float64 reference. Imported statically with their types: a renamed
// or removed export is a compile error here, never a silently skipped row.
import {
  decayLinearAttention,
  decayLinearAttentionBackward,
  decayLinearAttentionChunked,
  decayLinearAttentionChunkedBackward,
  decayLinearStateSize,
  gatedDeltaNet,
  gatedDeltaNetBackward,
  gatedDeltaNetChunked,
  gatedDeltaNetChunkedBackward,
  gatedDeltaNetStateSize,
  type KvmConfig,
  type KvmState,
  kvmAttention,
  kvmAttentionBackward,
  kvmAttentionBlocked,
  kvmAttentionBlockedBackward,
  kvmStateSize,
  linearAttention,
  linearAttentionBackward,
  linearAttentionChunked,
  linearAttentionChunkedBackward,
  linearStateSize,
  softmaxAttention,
  softmaxAttentionBackward,
  softmaxAttentionTiled,
  softmaxAttentionTiledBackward,
  softmaxStateSize,
  type VqConfig,
  type VqState,
  vqAttention,
  vqAttentionBackward,
  vqAttentionBlocked,
  vqAttentionBlockedBackward,
  vqStateSize,
} from '@ovq/baselines';
import { denseStateForwardFlops, modeFlops, softmaxForwardFlops } from './flops.js';
import { type BenchSeq, makeDOutput, makeSeq, rmsRatio, worstGradientRms } from './inputs.js';
import type { CheckResult, Dims, Implementation, Mixer } from './types.js';

type Grads = Record<string, unknown>;
type Out = { output: ArrayLike<number>; state: unknown };

export type BaselineSpec = {
  mixer: Mixer;
  configLabel: string;
  /** The float64 reference and its gradients (the oracle of the check). */
  reference: (seq: BenchSeq) => { output: Float64Array };
  referenceName: string;
  referenceBackward: (seq: BenchSeq, dOut: Float32Array) => Grads;
  /** The fast Float32 path: from `state` (or empty), writing into `out` when given. */
  fast: (seq: BenchSeq, options: { out?: Float32Array; state?: unknown }) => Out;
  fastName: string;
  fastBackward: (seq: BenchSeq, dOut: Float32Array) => Grads;
  stateSize: (dims: Dims, T: number) => number;
  flops: (T: number, dims: Dims) => number;
  /** Adds inputs the mixer takes beyond q, k, v and the per-token gates (e.g. a VQ codebook). */
  extend?: (seq: BenchSeq) => BenchSeq;
};

/** Transformer-VQ's codebook is a learned input; benchmarks use a fixed random one. */
const VQ_CODEBOOK_SIZE = 64;
type VqBenchSeq = BenchSeq & { codebook: Float32Array };
function withCodebook(seq: BenchSeq): VqBenchSeq {
  const codebook = makeSeq(99, VQ_CODEBOOK_SIZE, { keyDim: seq.keyDim, valueDim: 1 }).k;
  return { ...seq, codebook: Float32Array.from(codebook) };
}
const VQ_CONFIG: VqConfig = { codebookSize: VQ_CODEBOOK_SIZE, blockLength: 64 };

/** KVM sized like OVQ's bench setting (256 rows, β = 24) with a one-block raw window. */
export const KVM_BENCH_CONFIG: KvmConfig = {
  window: 64,
  blockSize: 64,
  beta: 24,
  budget: { kind: 'saturating', rows: 256 },
};

const asVq = (seq: BenchSeq) => seq as VqBenchSeq;

export const BASELINE_SPECS: BaselineSpec[] = [
  {
    mixer: 'softmax',
    configLabel: 'causal, β=1/√dk, KV cache',
    reference: (s) => softmaxAttention(s),
    referenceName: 'softmaxAttention',
    referenceBackward: (s, d) => softmaxAttentionBackward(s, undefined, d),
    fast: (s, o) => softmaxAttentionTiled(s, undefined, o as { out?: Float32Array }),
    fastName: 'softmaxAttentionTiled',
    fastBackward: (s, d) => softmaxAttentionTiledBackward(s, undefined, d),
    stateSize: (d, T) => softmaxStateSize(d, undefined, T),
    flops: (T, d) => softmaxForwardFlops(T, d),
  },
  {
    mixer: 'linear',
    configLabel: 'elu+1 features, normalised',
    reference: (s) => linearAttention(s),
    referenceName: 'linearAttention',
    referenceBackward: (s, d) => linearAttentionBackward(s, undefined, d),
    fast: (s, o) => linearAttentionChunked(s, undefined, o as never),
    fastName: 'linearAttentionChunked',
    fastBackward: (s, d) => linearAttentionChunkedBackward(s, undefined, d),
    stateSize: (d, T) => linearStateSize(d, undefined, T),
    flops: (T, d) => denseStateForwardFlops('linear', T, d),
  },
  {
    mixer: 'decay-linear',
    configLabel: 'scalar decay a_t ∈ [0.95, 1] (Mamba2/SSD form)',
    reference: (s) => decayLinearAttention(s),
    referenceName: 'decayLinearAttention',
    referenceBackward: (s, d) => decayLinearAttentionBackward(s, undefined, d),
    fast: (s, o) => decayLinearAttentionChunked(s, undefined, o as never),
    fastName: 'decayLinearAttentionChunked',
    fastBackward: (s, d) => decayLinearAttentionChunkedBackward(s, undefined, d),
    stateSize: (d, T) => decayLinearStateSize(d, undefined, T),
    flops: (T, d) => denseStateForwardFlops('decay-linear', T, d),
  },
  {
    mixer: 'gated-deltanet',
    configLabel: 'gates α_t ∈ [0.95, 1], β_t ∈ [0.09, 0.9], scale 1/√dk',
    reference: (s) => gatedDeltaNet(s),
    referenceName: 'gatedDeltaNet',
    referenceBackward: (s, d) => gatedDeltaNetBackward(s, undefined, d),
    fast: (s, o) => gatedDeltaNetChunked(s, undefined, o as never),
    fastName: 'gatedDeltaNetChunked',
    fastBackward: (s, d) => gatedDeltaNetChunkedBackward(s, undefined, d),
    stateSize: (d, T) => gatedDeltaNetStateSize(d, undefined, T),
    flops: (T, d) => denseStateForwardFlops('gated-deltanet', T, d),
  },
  {
    mixer: 'vq',
    configLabel: `S=${VQ_CODEBOOK_SIZE} random codes, block 64, β=1/√dk`,
    reference: (s) => vqAttention(asVq(s), VQ_CONFIG),
    referenceName: 'vqAttention',
    referenceBackward: (s, d) => vqAttentionBackward(asVq(s), VQ_CONFIG, d),
    fast: (s, o) =>
      vqAttentionBlocked(asVq(s), VQ_CONFIG, o as { out?: Float32Array; state?: VqState }),
    fastName: 'vqAttentionBlocked',
    fastBackward: (s, d) => vqAttentionBlockedBackward(asVq(s), VQ_CONFIG, d),
    stateSize: (d, T) => vqStateSize(d, VQ_CONFIG, T),
    flops: () => Number.NaN,
    extend: withCodebook,
  },
  {
    mixer: 'kvm',
    configLabel: 'window 64, block 64, β=24, saturating 256 rows',
    reference: (s) => kvmAttention(s, KVM_BENCH_CONFIG),
    referenceName: 'kvmAttention',
    referenceBackward: (s, d) => kvmAttentionBackward(s, KVM_BENCH_CONFIG, d),
    fast: (s, o) =>
      kvmAttentionBlocked(s, KVM_BENCH_CONFIG, o as { out?: Float32Array; state?: KvmState }),
    fastName: 'kvmAttentionBlocked',
    fastBackward: (s, d) => kvmAttentionBlockedBackward(s, KVM_BENCH_CONFIG, d),
    stateSize: (d, T) => kvmStateSize(d, KVM_BENCH_CONFIG, T),
    flops: () => Number.NaN,
  },
];

const CHECK_DIMS: Dims = { keyDim: 16, valueDim: 12 };
const CHECK_T = 203;
const TOLERANCE = 1e-4;

const extend = (spec: BaselineSpec, seq: BenchSeq) => (spec.extend ? spec.extend(seq) : seq);

function baselineCheck(spec: BaselineSpec) {
  return async (): Promise<CheckResult> => {
    const seq = extend(spec, makeSeq(7, CHECK_T, CHECK_DIMS, Float32Array));
    const expected = spec.reference(seq).output;
    // NaN-poisoned output buffer: a skipped write fails the check.
    const out = new Float32Array(CHECK_T * CHECK_DIMS.valueDim).fill(Number.NaN);
    spec.fast(seq, { out });
    const forwardRms = rmsRatio(expected, out);
    const dOut = makeDOutput(7, CHECK_T, CHECK_DIMS.valueDim);
    const g = worstGradientRms(spec.referenceBackward(seq, dOut), spec.fastBackward(seq, dOut));
    return {
      ok: forwardRms < TOLERANCE && g.rms < 10 * TOLERANCE,
      forwardRms,
      backwardRms: g.rms,
      tolerance: TOLERANCE,
      detail: `vs float64 ${spec.referenceName} on T=${CHECK_T}, dk=${CHECK_DIMS.keyDim}, dv=${CHECK_DIMS.valueDim}, gradients ${g.compared.join('/')}`,
    };
  };
}

export function baselineImplementation(spec: BaselineSpec): Implementation {
  const implementation = 'baselines-fast';
  return {
    name: `${spec.mixer}/${implementation}`,
    mixer: spec.mixer,
    implementation,
    config: `${spec.fastName}: ${spec.configLabel}`,
    hasBackward: true,
    check: baselineCheck(spec),
    async setup(T, dims) {
      const seq = extend(spec, makeSeq(1, T, dims));
      const out = new Float32Array(T * dims.valueDim);
      const dOut = makeDOutput(1, T, dims.valueDim);
      return {
        forward: () => spec.fast(seq, { out }),
        forwardBackward: () => {
          spec.fast(seq, { out });
          return spec.fastBackward(seq, dOut);
        },
      };
    },
    flops: (T, dims, mode) => modeFlops(spec.flops(T, dims), mode),
    stateSize: (T, dims) => spec.stateSize(dims, T),
    async stream(T, dims, piece, afterPiece) {
      let state: unknown;
      for (let t = 0; t < T; t += piece) {
        const s = extend(spec, makeSeq(t + 1, Math.min(piece, T - t), dims));
        state = spec.fast(s, state === undefined ? {} : { state }).state;
        await afterPiece();
      }
    },
  };
}

export function baselineImplementations(): Implementation[] {
  return BASELINE_SPECS.map(baselineImplementation);
}
