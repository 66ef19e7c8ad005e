// Plain float64 loops the speed-baseline kernels are checked against (per head, [T, d] rows).

export function causalSoftmaxAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  T: number,
  dk: number,
  dv: number,
  scale: number,
): Float64Array {
  const out = new Float64Array(T * dv);
  const w = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let s = 0; s <= t; s++) {
      let dot = 0;
      for (let d = 0; d < dk; d++) dot += q[t * dk + d] * k[s * dk + d];
      w[s] = scale * dot;
      if (w[s] > max) max = w[s];
    }
    let sum = 0;
    for (let s = 0; s <= t; s++) sum += w[s] = Math.exp(w[s] - max);
    for (let s = 0; s <= t; s++)
      for (let d = 0; d < dv; d++) out[t * dv + d] += (w[s] / sum) * v[s * dv + d];
  }
  return out;
}

/** Exact gradients of ⟨dOut, attention(q, k, v)⟩ (softmax backward, float64). */
export function causalSoftmaxAttentionBackward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dOut: ArrayLike<number>,
  T: number,
  dk: number,
  dv: number,
  scale: number,
) {
  const dq = new Float64Array(T * dk);
  const dkk = new Float64Array(T * dk);
  const dvv = new Float64Array(T * dv);
  let dscale = 0;
  const p = new Float64Array(T);
  const raw = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    let max = Number.NEGATIVE_INFINITY;
    for (let s = 0; s <= t; s++) {
      let dot = 0;
      for (let d = 0; d < dk; d++) dot += q[t * dk + d] * k[s * dk + d];
      raw[s] = dot;
      p[s] = scale * dot;
      if (p[s] > max) max = p[s];
    }
    let sum = 0;
    for (let s = 0; s <= t; s++) sum += p[s] = Math.exp(p[s] - max);
    let delta = 0;
    const dp = new Float64Array(t + 1);
    for (let s = 0; s <= t; s++) {
      p[s] /= sum;
      for (let d = 0; d < dv; d++) dp[s] += dOut[t * dv + d] * v[s * dv + d];
      delta += p[s] * dp[s];
    }
    for (let s = 0; s <= t; s++) {
      const ds = p[s] * (dp[s] - delta);
      dscale += ds * raw[s];
      for (let d = 0; d < dk; d++) {
        dq[t * dk + d] += scale * ds * k[s * dk + d];
        dkk[s * dk + d] += scale * ds * q[t * dk + d];
      }
      for (let d = 0; d < dv; d++) dvv[s * dv + d] += p[s] * dOut[t * dv + d];
    }
  }
  return { dq, dk: dkk, dv: dvv, dscale };
}

export function causalLinearAttention(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  T: number,
  dk: number,
  dv: number,
): Float64Array {
  const out = new Float64Array(T * dv);
  const S = new Float64Array(dk * dv);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < dk; i++)
      for (let j = 0; j < dv; j++) S[i * dv + j] += k[t * dk + i] * v[t * dv + j];
    for (let i = 0; i < dk; i++)
      for (let j = 0; j < dv; j++) out[t * dv + j] += q[t * dk + i] * S[i * dv + j];
  }
  return out;
}

export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  m: number,
  n: number,
  k: number,
): Float64Array {
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let p = 0; p < k; p++)
      for (let j = 0; j < n; j++) c[i * n + j] += a[i * k + p] * b[p * n + j];
  return c;
}

/** Slices head h of a [heads, T, d] array. */
export function head(
  x: ArrayLike<number>,
  h: number,
  rowsPerHead: number,
  dim: number,
): Float64Array {
  const out = new Float64Array(rowsPerHead * dim);
  for (let i = 0; i < out.length; i++) out[i] = x[h * rowsPerHead * dim + i];
  return out;
}

/** Concatenates per-head float64 results into one [heads, …] array. */
export function concat(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p as ArrayLike<number>, at);
    at += p.length;
  }
  return out;
}
