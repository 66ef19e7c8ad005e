// Test helpers shared by every @ovq package (exported as `@ovq/core/testing`).
import { mulberry32Step } from '../ovq/rng.js';

/** A seedable uniform generator (mulberry32) so tests and benchmarks are reproducible. */
export function createRng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    const step = mulberry32Step(state);
    state = step.state;
    return step.value;
  };
}

/** Standard normal samples (Box–Muller) from a uniform generator. */
export function randn(rng: () => number, length: number): Float64Array {
  const out = new Float64Array(length);
  for (let i = 0; i < length; i += 2) {
    const u = Math.max(rng(), 1e-300);
    const r = Math.sqrt(-2 * Math.log(u));
    const theta = 2 * Math.PI * rng();
    out[i] = r * Math.cos(theta);
    if (i + 1 < length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

/** A random one-head sequence with standard-normal q, k, v. */
export function randomSeq(
  seed: number,
  seqLen: number,
  keyDim: number,
  valueDim: number,
): {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  seqLen: number;
  keyDim: number;
  valueDim: number;
} {
  const rng = createRng(seed);
  return {
    q: randn(rng, seqLen * keyDim),
    k: randn(rng, seqLen * keyDim),
    v: randn(rng, seqLen * valueDim),
    seqLen,
    keyDim,
    valueDim,
  };
}

/** A buffer filled with NaN, so that a kernel that skips a write is caught by `assertClose`. */
export function poisoned(length: number): Float32Array {
  return new Float32Array(length).fill(Number.NaN);
}

export type Numeric = ArrayLike<number>;

function countNonFinite(x: Numeric): number {
  let bad = 0;
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) bad++;
  return bad;
}

/** ‖ref − actual‖ / max(‖ref‖, tiny): the RMS error ratio used by every fast-path test. */
export function rmsRatio(ref: Numeric, actual: Numeric): number {
  if (ref.length !== actual.length) {
    throw new Error(`rmsRatio: lengths differ (ref ${ref.length}, actual ${actual.length})`);
  }
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    const d = ref[i] - actual[i];
    num += d * d;
    den += ref[i] * ref[i];
  }
  if (den === 0) return Math.sqrt(num) === 0 ? 0 : Number.POSITIVE_INFINITY;
  return Math.sqrt(num / den);
}

/**
 * Throws unless `actual` matches `ref` with RMS error ratio ≤ `ratio`. Any NaN/∞ on either side
 * fails. When the reference is all zeros, the absolute RMS error must be ≤ `ratio`.
 */
export function assertClose(name: string, ref: Numeric, actual: Numeric, ratio: number): void {
  if (ref.length !== actual.length) {
    throw new Error(`${name}: length ${actual.length}, expected ${ref.length}`);
  }
  const badRef = countNonFinite(ref);
  const badActual = countNonFinite(actual);
  if (badRef > 0 || badActual > 0) {
    throw new Error(`${name}: non-finite values (reference ${badRef}, actual ${badActual})`);
  }
  let num = 0;
  let den = 0;
  let worst = 0;
  let worstAt = -1;
  for (let i = 0; i < ref.length; i++) {
    const d = ref[i] - actual[i];
    num += d * d;
    den += ref[i] * ref[i];
    if (Math.abs(d) > worst) {
      worst = Math.abs(d);
      worstAt = i;
    }
  }
  const err = den === 0 ? Math.sqrt(num / Math.max(ref.length, 1)) : Math.sqrt(num / den);
  if (!(err <= ratio)) {
    throw new Error(
      `${name}: RMS ratio ${err.toExponential(3)} > ${ratio} (worst |diff| ${worst.toExponential(3)} at ${worstAt}: ref ${ref[worstAt]}, actual ${actual[worstAt]})`,
    );
  }
}

/**
 * Float64 central differences of a scalar function f(x) at x along every coordinate:
 * ∂f/∂x_i ≈ (f(x + h e_i) − f(x − h e_i)) / 2h. `x` is restored afterwards.
 */
export function centralDifferences(f: () => number, x: Float64Array, h = 1e-6): Float64Array {
  const grad = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + h;
    const plus = f();
    x[i] = saved - h;
    const minus = f();
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

/** Σ_i a_i b_i: the loss ⟨dOutput, output⟩ whose gradient is dOutput, used by gradient checks. */
export function dot(a: Numeric, b: Numeric): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
export { DECISION_EPS, type DecisionStats, verifyDecisions } from './decisions.js';
