// Deterministic inputs for checks, timing and streaming: the same seed gives the same sequence on
// every implementation, so their outputs can be compared and their timings are of equal work.
import { createRng, randn } from '@ovq/core/testing';
import type { Dims } from './types.js';

export type FloatArray = Float32Array | Float64Array;

export type BenchSeq = {
  q: FloatArray;
  k: FloatArray;
  v: FloatArray;
  seqLen: number;
  keyDim: number;
  valueDim: number;
  /** Per-token gates some baselines take (decay a_t ∈ (0,1], write strength β_t ∈ (0,1)). */
  decay: FloatArray;
  beta: FloatArray;
  /** GDN's name for its decay gate: the same values as `decay`. */
  alpha: FloatArray;
};

export function makeSeq(
  seed: number,
  T: number,
  dims: Dims,
  Float: Float32ArrayConstructor | Float64ArrayConstructor = Float32Array,
): BenchSeq {
  const rng = createRng(seed);
  const gates = (lo: number) => {
    const g = new Float(T);
    for (let t = 0; t < T; t++) g[t] = lo + (1 - lo) * rng();
    return g;
  };
  const decay = gates(0.95);
  return {
    q: Float.from(randn(rng, T * dims.keyDim)),
    k: Float.from(randn(rng, T * dims.keyDim)),
    v: Float.from(randn(rng, T * dims.valueDim)),
    seqLen: T,
    keyDim: dims.keyDim,
    valueDim: dims.valueDim,
    decay,
    alpha: decay,
    beta: gates(0.1).map((x) => x * 0.9),
  };
}

/** A fixed upstream gradient for forward+backward timings and gradient checks. */
export function makeDOutput(seed: number, T: number, valueDim: number): Float32Array {
  return Float32Array.from(randn(createRng(seed ^ 0x5eed), T * valueDim));
}

/** ‖ref − x‖/‖ref‖; NaN or a length mismatch on either side counts as a failure (Infinity). */
export function rmsRatio(ref: ArrayLike<number>, x: ArrayLike<number>): number {
  if (ref.length !== x.length) return Number.POSITIVE_INFINITY;
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ref[i] - x[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (!Number.isFinite(num) || !Number.isFinite(den)) return Number.POSITIVE_INFINITY;
  return den === 0 ? (num === 0 ? 0 : Number.POSITIVE_INFINITY) : Math.sqrt(num / den);
}

/** Worst RMS ratio over the gradient arrays the reference returns (dq, dk, dv, d-gates…). */
export function worstGradientRms(
  ref: Record<string, unknown>,
  x: Record<string, unknown>,
): { rms: number; compared: string[] } {
  let worst = 0;
  const compared: string[] = [];
  for (const [key, value] of Object.entries(ref)) {
    if (!key.startsWith('d') || !ArrayBuffer.isView(value)) continue;
    const other = x[key];
    if (!ArrayBuffer.isView(other)) {
      worst = Number.POSITIVE_INFINITY;
      compared.push(`${key} (missing)`);
      continue;
    }
    compared.push(key);
    worst = Math.max(worst, rmsRatio(value as Float64Array, other as Float64Array));
  }
  return { rms: compared.length ? worst : Number.POSITIVE_INFINITY, compared };
}
