// Gaussian-mixture regression (ALGORITHM.md §3), written from the densities, not from the OVQ
// read formula, so that tests can show the two are the same function.
//   p(k, v) = Σ_i π_i N(k; μ_i, β⁻¹I) N(v; ν_i, Σ_i),   E[v | k = q] = Σ_i γ_i(q) ν_i.

/** A mixture over keys (isotropic, precision β) with a value mean per component. */
export type GaussianMixture = {
  keyDim: number;
  valueDim: number;
  /** Precision β of every key component. */
  beta: number;
  /** Component weights π_i (need not be normalised; only ratios matter). */
  weights: Float64Array;
  /** Key means μ_i, [n, keyDim]. */
  keyMeans: Float64Array;
  /** Value means ν_i, [n, valueDim]. */
  valueMeans: Float64Array;
};

/** The mixture an OVQ dictionary represents: π_i ∝ c_i (pending tokens are components with c = 1). */
export function mixtureFromDictionary(
  keyMeans: Float64Array,
  valueMeans: Float64Array,
  counts: Float64Array,
  keyDim: number,
  valueDim: number,
  beta: number,
): GaussianMixture {
  let total = 0;
  for (const c of counts) total += c;
  return {
    keyDim,
    valueDim,
    beta,
    weights: counts.map((c) => c / total),
    keyMeans,
    valueMeans,
  };
}

/** ln N(x; μ_i, β⁻¹I) = −(β/2)‖x − μ_i‖² + (d/2) ln(β / 2π). */
export function componentLogDensity(
  mixture: GaussianMixture,
  i: number,
  x: ArrayLike<number>,
): number {
  const { keyDim, beta, keyMeans } = mixture;
  let sq = 0;
  for (let d = 0; d < keyDim; d++) sq += (x[d] - keyMeans[i * keyDim + d]) ** 2;
  return -0.5 * beta * sq + 0.5 * keyDim * Math.log(beta / (2 * Math.PI));
}

/** Posterior responsibilities γ_i(x) = π_i N_i(x) / Σ_j π_j N_j(x) (computed in log space). */
export function responsibilities(mixture: GaussianMixture, x: ArrayLike<number>): Float64Array {
  const n = mixture.weights.length;
  const logJoint = new Float64Array(n);
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    logJoint[i] = Math.log(mixture.weights[i]) + componentLogDensity(mixture, i, x);
    if (logJoint[i] > max) max = logJoint[i];
  }
  let sum = 0;
  for (let i = 0; i < n; i++) sum += logJoint[i] = Math.exp(logJoint[i] - max);
  for (let i = 0; i < n; i++) logJoint[i] /= sum;
  return logJoint;
}

/** The regression E[v | k = x] = Σ_i γ_i(x) ν_i. */
export function conditionalMean(mixture: GaussianMixture, x: ArrayLike<number>): Float64Array {
  const gamma = responsibilities(mixture, x);
  const out = new Float64Array(mixture.valueDim);
  for (let i = 0; i < gamma.length; i++) {
    for (let d = 0; d < mixture.valueDim; d++)
      out[d] += gamma[i] * mixture.valueMeans[i * mixture.valueDim + d];
  }
  return out;
}
