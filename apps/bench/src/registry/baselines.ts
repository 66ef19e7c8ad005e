// Baseline mixers from @ovq/baselines: each fast path (tiled / chunked Float32) checked against
// the package's own float64 reference. Functions are looked up by name so mixers that have not
// landed yet show up as skipped with the missing export named.
import { denseStateForwardFlops, modeFlops, softmaxForwardFlops } from './flops.js';
import { type BenchSeq, makeDOutput, makeSeq, rmsRatio, worstGradientRms } from './inputs.js';
import type { CheckResult, Dims, Implementation, Mixer, Skipped } from './types.js';

type Fn = (...args: unknown[]) => Record<string, unknown>;

export type BaselineSpec = {
  mixer: Mixer;
  /** Config passed to every call (undefined = the package defaults). */
  config: Record<string, unknown> | undefined;
  configLabel: string;
  reference: string;
  referenceBackward: string;
  /** Fast-path names, first found wins. */
  fast: string[];
  fastBackward: string[];
  stateSize: string;
  flops: (T: number, dims: Dims) => number;
  /** Adds inputs the mixer takes beyond q, k, v and the per-token gates (e.g. a VQ codebook). */
  extend?: (seq: BenchSeq) => BenchSeq;
};

/** Transformer-VQ's codebook is a learned input; benchmarks use a fixed random one. */
const VQ_CODEBOOK_SIZE = 64;
function withCodebook(seq: BenchSeq): BenchSeq {
  const codebook = makeSeq(99, VQ_CODEBOOK_SIZE, { keyDim: seq.keyDim, valueDim: 1 }).k;
  return { ...seq, codebook } as BenchSeq;
}

/** KVM sized like OVQ's bench setting (256 rows, β = 24) with a one-block raw window. */
export const KVM_BENCH_CONFIG = {
  window: 64,
  blockSize: 64,
  beta: 24,
  budget: { kind: 'saturating', rows: 256 },
};

export const BASELINE_SPECS: BaselineSpec[] = [
  {
    mixer: 'softmax',
    config: undefined,
    configLabel: 'causal, β=1/√dk, KV cache',
    reference: 'softmaxAttention',
    referenceBackward: 'softmaxAttentionBackward',
    fast: ['softmaxAttentionTiled'],
    fastBackward: ['softmaxAttentionTiledBackward'],
    stateSize: 'softmaxStateSize',
    flops: (T, d) => softmaxForwardFlops(T, d),
  },
  {
    mixer: 'linear',
    config: undefined,
    configLabel: 'elu+1 features, normalised',
    reference: 'linearAttention',
    referenceBackward: 'linearAttentionBackward',
    fast: ['linearAttentionChunked'],
    fastBackward: ['linearAttentionChunkedBackward'],
    stateSize: 'linearStateSize',
    flops: (T, d) => denseStateForwardFlops('linear', T, d),
  },
  {
    mixer: 'decay-linear',
    config: undefined,
    configLabel: 'scalar decay a_t ∈ [0.95, 1] (Mamba2/SSD form)',
    reference: 'decayLinearAttention',
    referenceBackward: 'decayLinearAttentionBackward',
    fast: ['decayLinearAttentionChunked'],
    fastBackward: ['decayLinearAttentionChunkedBackward'],
    stateSize: 'decayLinearStateSize',
    flops: (T, d) => denseStateForwardFlops('decay-linear', T, d),
  },
  {
    mixer: 'gated-deltanet',
    config: undefined,
    configLabel: 'gates α_t ∈ [0.95, 1], β_t ∈ [0.09, 0.9], scale 1/√dk',
    reference: 'gatedDeltaNet',
    referenceBackward: 'gatedDeltaNetBackward',
    fast: ['gatedDeltaNetChunked'],
    fastBackward: ['gatedDeltaNetChunkedBackward'],
    stateSize: 'gatedDeltaNetStateSize',
    flops: (T, d) => denseStateForwardFlops('gated-deltanet', T, d),
  },
  {
    mixer: 'vq',
    config: { codebookSize: VQ_CODEBOOK_SIZE, blockLength: 64 },
    configLabel: `S=${VQ_CODEBOOK_SIZE} random codes, block 64, β=1/√dk`,
    reference: 'vqAttention',
    referenceBackward: 'vqAttentionBackward',
    fast: ['vqAttentionBlocked'],
    fastBackward: ['vqAttentionBlockedBackward'],
    stateSize: 'vqStateSize',
    flops: () => Number.NaN,
    extend: withCodebook,
  },
  {
    mixer: 'kvm',
    config: KVM_BENCH_CONFIG,
    configLabel: 'window 64, block 64, β=24, saturating 256 rows',
    reference: 'kvmAttention',
    referenceBackward: 'kvmAttentionBackward',
    fast: ['kvmAttentionBlocked'],
    fastBackward: ['kvmAttentionBlockedBackward'],
    stateSize: 'kvmStateSize',
    flops: () => Number.NaN,
  },
];

const CHECK_DIMS: Dims = { keyDim: 16, valueDim: 12 };
const CHECK_T = 203;
const TOLERANCE = 1e-4;

const extend = (spec: BaselineSpec, seq: BenchSeq) => (spec.extend ? spec.extend(seq) : seq);

function fnOf(mod: Record<string, unknown>, name: string): Fn | undefined {
  const f = mod[name];
  return typeof f === 'function' ? (f as Fn) : undefined;
}

function baselineCheck(spec: BaselineSpec, ref: Fn, fast: Fn, refBwd?: Fn, fastBwd?: Fn) {
  return async (): Promise<CheckResult> => {
    const seq = extend(spec, makeSeq(7, CHECK_T, CHECK_DIMS, Float32Array));
    const expected = ref(seq, spec.config).output as Float64Array;
    const forwardRms = rmsRatio(expected, fast(seq, spec.config).output as Float32Array);
    let backwardRms: number | null = null;
    let compared = '';
    if (refBwd && fastBwd) {
      const dOut = makeDOutput(7, CHECK_T, CHECK_DIMS.valueDim);
      const g = worstGradientRms(refBwd(seq, spec.config, dOut), fastBwd(seq, spec.config, dOut));
      backwardRms = g.rms;
      compared = `, gradients ${g.compared.join('/')}`;
    }
    return {
      ok: forwardRms < TOLERANCE && (backwardRms === null || backwardRms < 10 * TOLERANCE),
      forwardRms,
      backwardRms,
      tolerance: TOLERANCE,
      detail: `vs float64 ${spec.reference} on T=${CHECK_T}, dk=${CHECK_DIMS.keyDim}, dv=${CHECK_DIMS.valueDim}${compared}`,
    };
  };
}

export function baselineImplementation(
  spec: BaselineSpec,
  mod: Record<string, unknown>,
): Implementation | Skipped {
  const fastName = spec.fast.find((n) => fnOf(mod, n));
  const ref = fnOf(mod, spec.reference);
  const implementation = 'baselines-fast';
  const name = `${spec.mixer}/${implementation}`;
  if (!fastName || !ref) {
    const missing = [!ref ? spec.reference : null, !fastName ? spec.fast.join(' or ') : null]
      .filter(Boolean)
      .join(', ');
    return {
      name,
      mixer: spec.mixer,
      implementation,
      reason: `@ovq/baselines does not export ${missing} yet`,
    };
  }
  const fast = fnOf(mod, fastName) as Fn;
  const refBwd = fnOf(mod, spec.referenceBackward);
  const fastBwdName = spec.fastBackward.find((n) => fnOf(mod, n));
  const fastBwd = fastBwdName ? fnOf(mod, fastBwdName) : undefined;
  const stateSize = fnOf(mod, spec.stateSize) as
    | ((dims: Dims, config: unknown, T: number) => number)
    | undefined;
  return {
    name,
    mixer: spec.mixer,
    implementation,
    config: `${fastName}: ${spec.configLabel}`,
    hasBackward: fastBwd !== undefined,
    check: baselineCheck(spec, ref, fast, refBwd, fastBwd),
    async setup(T, dims) {
      const seq = extend(spec, makeSeq(1, T, dims));
      const out = new Float32Array(T * dims.valueDim);
      const dOut = makeDOutput(1, T, dims.valueDim);
      return {
        forward: () => fast(seq, spec.config, { out }),
        forwardBackward: fastBwd
          ? () => {
              fast(seq, spec.config, { out });
              return fastBwd(seq, spec.config, dOut);
            }
          : undefined,
      };
    },
    flops: (T, dims, mode) => modeFlops(spec.flops(T, dims), mode),
    stateSize: (T, dims) => (stateSize ? stateSize(dims, spec.config, T) : Number.NaN),
    async stream(T, dims, piece, afterPiece) {
      let state: unknown;
      for (let t = 0; t < T; t += piece) {
        const s = extend(spec, makeSeq(t + 1, Math.min(piece, T - t), dims));
        state = fast(s, spec.config, state === undefined ? {} : { state }).state;
        await afterPiece();
      }
    },
  };
}

export async function baselineImplementations(): Promise<{
  implementations: Implementation[];
  skipped: Skipped[];
}> {
  const implementations: Implementation[] = [];
  const skipped: Skipped[] = [];
  let mod: Record<string, unknown>;
  try {
    mod = (await import('@ovq/baselines')) as Record<string, unknown>;
  } catch (error) {
    for (const spec of BASELINE_SPECS) {
      skipped.push({
        name: `${spec.mixer}/baselines-fast`,
        mixer: spec.mixer,
        implementation: 'baselines-fast',
        reason: `@ovq/baselines failed to load: ${String(error)}`,
      });
    }
    return { implementations, skipped };
  }
  for (const spec of BASELINE_SPECS) {
    const e = baselineImplementation(spec, mod);
    if ('check' in e) implementations.push(e);
    else skipped.push(e);
  }
  return { implementations, skipped };
}
