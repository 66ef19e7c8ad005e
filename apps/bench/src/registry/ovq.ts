// OVQ-attention entries from @ovq/core: the float64 reference (always present) and the chunked
// Float32 path when core exports it. Optional exports are looked up by name at run time, so the
// runner builds and reports "skipped" before a sibling package has landed them.
import * as core from '@ovq/core';
import {
  type OvqConfig,
  type OvqState,
  ovqAttentionReference,
  ovqAttentionReferenceBackward,
} from '@ovq/core';
import { modeFlops, ovqForwardFlops } from './flops.js';
import { type BenchSeq, makeDOutput, makeSeq, rmsRatio, worstGradientRms } from './inputs.js';
import type { CheckResult, Dims, Implementation, Skipped } from './types.js';

/** The OVQ setting every speed/memory measurement uses (the recall demo's defaults). */
export const OVQ_BENCH_CONFIG: OvqConfig = { capacity: 256, chunkSize: 64, beta: 24 };

/** ALGORITHM.md §6: N·(dk + dv + 1) dictionary numbers plus C·(dk + dv) pending. */
export function ovqStateNumbers(config: OvqConfig, dims: Dims): number {
  const d = dims.keyDim + dims.valueDim;
  return config.capacity * (d + 1) + config.chunkSize * d;
}

type ChunkedForward = (
  seq: BenchSeq,
  config: OvqConfig,
  options?: { state?: OvqState; out?: Float32Array },
) => { output: Float32Array; state: OvqState; trace: core.OvqTrace };
type ChunkedBackward = (
  seq: BenchSeq,
  config: OvqConfig,
  dOutput: Float32Array,
) => Record<string, unknown>;

/** Exports of @ovq/core that may not exist yet, by name. */
export function optionalCoreExport<F>(name: string): F | undefined {
  const value = (core as Record<string, unknown>)[name];
  return typeof value === 'function' ? (value as F) : undefined;
}

const CHECK_DIMS: Dims = { keyDim: 16, valueDim: 12 };
const CHECK_T = 203; // odd, several absorbs, dictionary saturates
const CHECK_CONFIG: OvqConfig = { capacity: 24, chunkSize: 16, beta: 6 };
const TOLERANCE = 1e-4;

function entry(
  implementation: string,
  check: () => Promise<CheckResult>,
  forward: (seq: BenchSeq, out: Float32Array) => unknown,
  backward: ((seq: BenchSeq, dOut: Float32Array) => unknown) | undefined,
  stream: Implementation['stream'],
  Float: Float32ArrayConstructor | Float64ArrayConstructor,
  flops: Implementation['flops'] = (T, dims, mode) =>
    modeFlops(ovqForwardFlops(T, dims, OVQ_BENCH_CONFIG), mode),
): Implementation {
  const c = OVQ_BENCH_CONFIG;
  return {
    name: `ovq/${implementation}`,
    mixer: 'ovq',
    implementation,
    config: `N=${c.capacity} C=${c.chunkSize} β=${c.beta} saturating`,
    hasBackward: backward !== undefined,
    check,
    async setup(T, dims) {
      const seq = makeSeq(1, T, dims, Float);
      const out = new Float32Array(T * dims.valueDim);
      const dOut = makeDOutput(1, T, dims.valueDim);
      return {
        forward: () => forward(seq, out),
        forwardBackward: backward
          ? () => {
              forward(seq, out);
              return backward(seq, dOut);
            }
          : undefined,
      };
    },
    flops,
    stateSize: (_T, dims) => ovqStateNumbers(c, dims),
    stream,
  };
}

/** The reference is checked against an independent oracle: growth 'full' with N ≥ T is softmax. */
async function checkReference(): Promise<CheckResult> {
  const baselines = (await import('@ovq/baselines')) as Record<string, unknown>;
  const softmax = baselines.softmaxAttention as
    | ((s: BenchSeq, c: object) => { output: Float64Array })
    | undefined;
  const seq = makeSeq(7, CHECK_T, CHECK_DIMS, Float64Array);
  const full: OvqConfig = { ...CHECK_CONFIG, capacity: CHECK_T, growth: 'full' };
  if (!softmax) {
    return {
      ok: true,
      forwardRms: null,
      backwardRms: null,
      tolerance: TOLERANCE,
      detail: 'ground truth (no softmax oracle exported by @ovq/baselines to cross-check)',
    };
  }
  const ref = softmax(seq, { beta: full.beta, normalize: true }).output;
  const forwardRms = rmsRatio(ref, ovqAttentionReference(seq, full).output);
  return {
    ok: forwardRms < 1e-10,
    forwardRms,
    backwardRms: null,
    tolerance: 1e-10,
    detail: "ground truth; growth 'full', N ≥ T vs @ovq/baselines softmaxAttention (float64)",
  };
}

function chunkedCheck(fwd: ChunkedForward, bwd: ChunkedBackward | undefined) {
  return async (): Promise<CheckResult> => {
    const seq = makeSeq(7, CHECK_T, CHECK_DIMS, Float32Array);
    const fast = fwd(seq, CHECK_CONFIG);
    // Float32 rounding may flip a near-tie in assignment: replay the fast path's decisions.
    const ref = ovqAttentionReference(seq, CHECK_CONFIG, { replay: fast.trace });
    const forwardRms = rmsRatio(ref.output, fast.output);
    let backwardRms: number | null = null;
    let compared = '';
    if (bwd) {
      const dOut = makeDOutput(7, CHECK_T, CHECK_DIMS.valueDim);
      const refGrad = ovqAttentionReferenceBackward(seq, CHECK_CONFIG, dOut, {
        replay: fast.trace,
      });
      const g = worstGradientRms(
        refGrad as unknown as Record<string, unknown>,
        bwd(seq, CHECK_CONFIG, dOut),
      );
      backwardRms = g.rms;
      compared = `, gradients ${g.compared.join('/')}`;
    }
    const ok = forwardRms < TOLERANCE && (backwardRms === null || backwardRms < 10 * TOLERANCE);
    return {
      ok,
      forwardRms,
      backwardRms,
      tolerance: TOLERANCE,
      detail: `vs float64 ovqAttentionReference (replayed decisions) on T=${CHECK_T}, dk=${CHECK_DIMS.keyDim}, dv=${CHECK_DIMS.valueDim}${compared}`,
    };
  };
}

type ChunkedFlopsModel = (
  dims: { seqLen: number; keyDim: number; valueDim: number },
  config: OvqConfig,
) => { forward: number; backward: number };

/**
 * The chunked path's entry. Its GFLOP/s use core's own `chunkedFlops` when exported (the work its
 * kernels execute, masked half of the in-chunk block included); else the algorithmic model.
 */
export function ovqChunkedImplementation(
  fwd: ChunkedForward,
  bwd: ChunkedBackward | undefined,
  flopsModel: ChunkedFlopsModel | undefined,
): Implementation {
  const c = OVQ_BENCH_CONFIG;
  const flops: Implementation['flops'] | undefined = flopsModel
    ? (T, dims, mode) => {
        const f = flopsModel({ seqLen: T, ...dims }, c);
        return mode === 'forward' ? f.forward : f.forward + f.backward;
      }
    : undefined;
  return entry(
    'core-chunked',
    chunkedCheck(fwd, bwd),
    (seq, out) => fwd(seq, c, { out }),
    bwd ? (seq, dOut) => bwd(seq, c, dOut) : undefined,
    async (T, dims, piece, afterPiece) => {
      let state: OvqState | undefined;
      for (let t = 0; t < T; t += piece) {
        const s = makeSeq(t + 1, Math.min(piece, T - t), dims, Float32Array);
        state = fwd(s, c, state ? { state } : {}).state;
        await afterPiece();
      }
    },
    Float32Array,
    flops,
  );
}

export function ovqImplementations(): { implementations: Implementation[]; skipped: Skipped[] } {
  const implementations: Implementation[] = [];
  const skipped: Skipped[] = [];
  const c = OVQ_BENCH_CONFIG;
  implementations.push(
    entry(
      'core-reference',
      checkReference,
      (seq) => ovqAttentionReference(seq, c),
      (seq, dOut) => ovqAttentionReferenceBackward(seq, c, dOut),
      async (T, dims, piece, afterPiece) => {
        const state = core.createOvqState(dims, c);
        for (let t = 0; t < T; t += piece) {
          const s = makeSeq(t + 1, Math.min(piece, T - t), dims, Float64Array);
          core.ovqAppend(state, s);
          await afterPiece();
        }
      },
      Float64Array,
    ),
  );
  const fwd = optionalCoreExport<ChunkedForward>('ovqAttention');
  if (!fwd) {
    skipped.push({
      name: 'ovq/core-chunked',
      mixer: 'ovq',
      implementation: 'core-chunked',
      reason: '@ovq/core does not export ovqAttentionChunked yet',
    });
    return { implementations, skipped };
  }
  implementations.push(
    ovqChunkedImplementation(
      fwd,
      optionalCoreExport<ChunkedBackward>('ovqAttentionBackward'),
      optionalCoreExport<ChunkedFlopsModel>('chunkedFlops'),
    ),
  );
  return { implementations, skipped };
}
