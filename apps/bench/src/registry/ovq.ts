// OVQ-attention entries from @ovq/core: the float64 reference and the fast Float32 path
// (`ovqAttention`). Imported statically with their types: a renamed export is a compile error.
import { softmaxAttention } from '@ovq/baselines';
import {
  chunkedFlops,
  createOvqState,
  type OvqConfig,
  type OvqState,
  ovqAppend,
  ovqAttention,
  ovqAttentionBackward,
  ovqAttentionReference,
  ovqAttentionReferenceBackward,
} from '@ovq/core';
import { modeFlops, ovqForwardFlops } from './flops.js';
import { type BenchSeq, makeDOutput, makeSeq, rmsRatio, worstGradientRms } from './inputs.js';
import type { CheckResult, Dims, Implementation } from './types.js';

/** The OVQ setting every speed/memory measurement uses (the recall demo's defaults). */
export const OVQ_BENCH_CONFIG: OvqConfig = { capacity: 256, chunkSize: 64, beta: 24 };

/** ALGORITHM.md §6: N·(dk + dv + 1) dictionary numbers plus C·(dk + dv) pending. */
export function ovqStateNumbers(config: OvqConfig, dims: Dims): number {
  const d = dims.keyDim + dims.valueDim;
  return config.capacity * (d + 1) + config.chunkSize * d;
}

export type ChunkedForward = typeof ovqAttention;
export type ChunkedBackward = typeof ovqAttentionBackward;

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
  const seq = makeSeq(7, CHECK_T, CHECK_DIMS, Float64Array);
  const full: OvqConfig = { ...CHECK_CONFIG, capacity: CHECK_T, growth: 'full' };
  const ref = softmaxAttention(seq, { beta: full.beta, normalize: true }).output;
  const forwardRms = rmsRatio(ref, ovqAttentionReference(seq, full).output);
  return {
    ok: forwardRms < 1e-10,
    forwardRms,
    backwardRms: null,
    tolerance: 1e-10,
    detail: "growth 'full', N ≥ T vs @ovq/baselines softmaxAttention (float64)",
  };
}

function chunkedCheck(fwd: ChunkedForward, bwd: ChunkedBackward) {
  return async (): Promise<CheckResult> => {
    const seq = makeSeq(7, CHECK_T, CHECK_DIMS, Float32Array);
    // NaN-poisoned output buffer: a skipped write fails the check.
    const out = new Float32Array(CHECK_T * CHECK_DIMS.valueDim).fill(Number.NaN);
    const fast = fwd(seq, CHECK_CONFIG, { out });
    // Float32 rounding may flip a near-tie in assignment: replay the fast path's decisions.
    const ref = ovqAttentionReference(seq, CHECK_CONFIG, { replay: fast.trace });
    const forwardRms = rmsRatio(ref.output, fast.output);
    let backwardRms: number | null = null;
    let compared = '';
    {
      const dOut = makeDOutput(7, CHECK_T, CHECK_DIMS.valueDim);
      const refGrad = ovqAttentionReferenceBackward(seq, CHECK_CONFIG, dOut, {
        replay: fast.trace,
      });
      const g = worstGradientRms(
        refGrad as unknown as Record<string, unknown>,
        bwd(seq, CHECK_CONFIG, dOut) as unknown as Record<string, unknown>,
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

/** The fast path's entry; its GFLOP/s use core's `chunkedFlops` (the work its kernels execute). */
export function ovqChunkedImplementation(
  fwd: ChunkedForward = ovqAttention,
  bwd: ChunkedBackward = ovqAttentionBackward,
): Implementation {
  const c = OVQ_BENCH_CONFIG;
  return entry(
    'core-chunked',
    chunkedCheck(fwd, bwd),
    (seq, out) => fwd(seq, c, { out }),
    (seq, dOut) => bwd(seq, c, dOut),
    async (T, dims, piece, afterPiece) => {
      let state: OvqState | undefined;
      for (let t = 0; t < T; t += piece) {
        const s = makeSeq(t + 1, Math.min(piece, T - t), dims, Float32Array);
        state = fwd(s, c, state ? { state } : {}).state;
        await afterPiece();
      }
    },
    Float32Array,
    (T, dims, mode) => {
      const f = chunkedFlops({ seqLen: T, ...dims }, c);
      return mode === 'forward' ? f.forward : f.forward + f.backward;
    },
  );
}

export function ovqImplementations(): Implementation[] {
  const c = OVQ_BENCH_CONFIG;
  return [
    entry(
      'core-reference',
      checkReference,
      (seq) => ovqAttentionReference(seq, c),
      (seq, dOut) => ovqAttentionReferenceBackward(seq, c, dOut),
      async (T, dims, piece, afterPiece) => {
        const state = createOvqState(dims, c);
        for (let t = 0; t < T; t += piece) {
          const s = makeSeq(t + 1, Math.min(piece, T - t), dims, Float64Array);
          ovqAppend(state, s);
          await afterPiece();
        }
      },
      Float64Array,
    ),
    ovqChunkedImplementation(),
  ];
}
