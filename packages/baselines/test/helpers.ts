// Shared test scaffolding: sequences with extra per-token inputs, random splits, FD gradient checks.
import {
  assertClose,
  centralDifferences,
  createRng,
  dot,
  randn,
  randomSeq,
} from '@ovq/core/testing';

export { assertClose, createRng, dot, randn, randomSeq };

/** Float32 copy of a sequence (what a fast path sees), values rounded once. */
export function toF32<S extends Record<string, unknown>>(seq: S): S {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(seq)) {
    out[key] = value instanceof Float64Array ? Float32Array.from(value) : value;
  }
  return out as S;
}

/** Float64 copy of a sequence rounded through Float32, so reference and fast path see equal inputs. */
export function roundedF64<S extends Record<string, unknown>>(seq: S): S {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(seq)) {
    out[key] = value instanceof Float64Array ? Float64Array.from(Float32Array.from(value)) : value;
  }
  return out as S;
}

/** Sub-sequence [a, b) of every per-token array (rows of width `width[key]`). */
export function slice<S extends { seqLen: number }>(
  seq: S,
  a: number,
  b: number,
  widths: Record<string, number>,
): S {
  const out: Record<string, unknown> = { ...seq, seqLen: b - a };
  for (const [key, w] of Object.entries(widths)) {
    out[key] = ((seq as Record<string, unknown>)[key] as Float64Array).slice(a * w, b * w);
  }
  return out as S;
}

/** Random cut points splitting [0, T) into pieces (some of length 1), always including 0 and T. */
export function randomSplits(T: number, seed: number): number[] {
  const rng = createRng(seed);
  const cuts = new Set<number>([0, T]);
  const n = Math.min(T - 1, 5);
  while (cuts.size < n + 2) cuts.add(1 + Math.floor(rng() * (T - 1)));
  if (T > 2) cuts.add(1);
  return [...cuts].sort((x, y) => x - y);
}

/**
 * Streams the pieces [cuts[i], cuts[i+1]) alternately through the reference `append` (even
 * pieces) and the fast path (odd pieces), round-tripping the state through serialization after
 * each piece, so one run checks that all three continue each other's streams.
 */
export function streamAlternating<S, P>(
  cuts: number[],
  pieceOf: (a: number, b: number) => P,
  initial: S,
  ops: {
    append: (state: S, piece: P) => Iterable<number>;
    fast: (piece: P, state: S) => { output: Iterable<number>; state: S };
    roundTrip: (state: S) => S;
  },
): { parts: number[]; state: S } {
  let state = initial;
  const parts: number[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const piece = pieceOf(cuts[i], cuts[i + 1]);
    if (i % 2 === 0) parts.push(...ops.append(state, piece));
    else {
      const r = ops.fast(piece, state);
      state = r.state;
      parts.push(...r.output);
    }
    state = ops.roundTrip(state);
  }
  return { parts, state };
}

/** Finite-difference gradient of ⟨dOut, f()⟩ w.r.t. x, compared to `analytic` (RMS ratio). */
export function checkGradient(
  name: string,
  f: () => ArrayLike<number>,
  dOut: ArrayLike<number>,
  x: Float64Array,
  analytic: ArrayLike<number>,
  ratio = 1e-6,
  h = 1e-6,
): void {
  const fd = centralDifferences(() => dot(dOut, f()), x, h);
  assertClose(name, fd, analytic, ratio);
}

/** Uniform values in (lo, hi), Float64. */
export function uniform(seed: number, n: number, lo: number, hi: number): Float64Array {
  const rng = createRng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

/**
 * RMS ratio check whose denominator never drops below `floor` per element: for gradients that
 * vanish by cancellation (dq of a one-token linear attention is ~eps), relative error is noise.
 */
export function assertCloseFloor(
  name: string,
  ref: ArrayLike<number>,
  actual: ArrayLike<number>,
  ratio: number,
  floor = 1e-4,
): void {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(ref[i]) || !Number.isFinite(actual[i])) {
      throw new Error(`${name}: non-finite value at ${i} (ref ${ref[i]}, actual ${actual[i]})`);
    }
    num += (ref[i] - actual[i]) ** 2;
    den += ref[i] * ref[i];
  }
  if (ref.length !== actual.length)
    throw new Error(`${name}: length ${actual.length}, expected ${ref.length}`);
  const err = Math.sqrt(num / Math.max(den, floor * floor * ref.length));
  if (!(err <= ratio))
    throw new Error(`${name}: RMS ratio (floored) ${err.toExponential(3)} > ${ratio}`);
}
