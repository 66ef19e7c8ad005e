// The learning side of the GMR view: a hard-assignment E-step and the M-step as a Newton step on
// the negative log-likelihood. OVQ's absorb is exactly these two steps (ALGORITHM.md §3).
import { componentLogDensity, type GaussianMixture } from './mixture.js';

/**
 * Hard E-step: each key goes to its most likely component under equal priors, which for
 * isotropic components of one precision is the nearest mean (ties: lowest index).
 */
export function hardAssign(
  mixture: GaussianMixture,
  keys: Float64Array,
  count: number,
): Int32Array {
  const z = new Int32Array(count);
  const n = mixture.weights.length;
  for (let j = 0; j < count; j++) {
    const x = keys.subarray(j * mixture.keyDim, (j + 1) * mixture.keyDim);
    let best = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < n; i++) {
      const l = componentLogDensity(mixture, i, x);
      if (l > best) {
        best = l;
        z[j] = i;
      }
    }
  }
  return z;
}

/**
 * Gradient and Hessian (a multiple of I) at μ of the negative log-likelihood of one component's
 * data: `count` earlier points summarised by their mean μ (their own gradient vanishes there) and
 * the newly assigned points: ∇ = −β Σ_s (x_s − μ), H = β (count + |S|) I.
 */
export function componentNllDerivatives(
  mu: ArrayLike<number>,
  count: number,
  assigned: ArrayLike<number>[],
  beta: number,
): { gradient: Float64Array; hessianScale: number } {
  const dim = mu.length;
  const gradient = new Float64Array(dim);
  for (const x of assigned) for (let d = 0; d < dim; d++) gradient[d] -= beta * (x[d] - mu[d]);
  return { gradient, hessianScale: beta * (count + assigned.length) };
}

/** One Newton step μ ← μ − H⁻¹∇ (H = hessianScale·I): for a quadratic it lands on the minimum. */
export function newtonStep(
  mu: ArrayLike<number>,
  gradient: Float64Array,
  hessianScale: number,
): Float64Array {
  const out = new Float64Array(mu.length);
  for (let d = 0; d < mu.length; d++) out[d] = mu[d] - gradient[d] / hessianScale;
  return out;
}
