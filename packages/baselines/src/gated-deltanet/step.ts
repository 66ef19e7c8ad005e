// One token of the gated delta rule, forward and reverse; shared by the reference and the fast
// backward (which replays it inside each chunk from a checkpointed chunk-start state).
import type { FloatArray } from '../common.js';

/**
 * S ← α S + k̂ uᵀ with u = β (v − α Sᵀk̂), i.e. S_t = α_t (I − β_t k̂k̂ᵀ) S_{t−1} + β_t k̂ vᵀ.
 * `k`, `v` are read at offsets ko, vo; `u` is scratch [dv].
 */
export function deltaStep(
  S: FloatArray,
  k: FloatArray,
  ko: number,
  v: FloatArray,
  vo: number,
  alpha: number,
  beta: number,
  dk: number,
  dv: number,
  u: FloatArray,
): void {
  for (let j = 0; j < dv; j++) u[j] = 0;
  for (let i = 0; i < dk; i++) {
    const a = k[ko + i];
    for (let j = 0; j < dv; j++) u[j] += a * S[i * dv + j];
  }
  for (let j = 0; j < dv; j++) u[j] = beta * (v[vo + j] - alpha * u[j]);
  for (let i = 0; i < dk; i++) {
    const a = k[ko + i];
    for (let j = 0; j < dv; j++) S[i * dv + j] = alpha * S[i * dv + j] + a * u[j];
  }
}

/**
 * Reverse of one token given G = ∂L/∂S_t (the read's direct term already added) and S_prev = S_{t−1}:
 * writes dk̂ (at ko), dv (at vo), returns [dα, dβ], and turns G into ∂L/∂S_{t−1} (without the read
 * of token t−1). Scratch gk, sk: [dv].
 */
export function deltaStepBackward(
  G: FloatArray,
  Sprev: FloatArray,
  k: FloatArray,
  ko: number,
  v: FloatArray,
  vo: number,
  alpha: number,
  beta: number,
  dk: number,
  dv: number,
  gkOut: FloatArray,
  gvOut: FloatArray,
  gk: FloatArray,
  sk: FloatArray,
): [number, number] {
  for (let j = 0; j < dv; j++) {
    gk[j] = 0;
    sk[j] = 0;
  }
  let dAlpha = 0;
  for (let i = 0; i < dk; i++) {
    const a = k[ko + i];
    for (let j = 0; j < dv; j++) {
      const g = G[i * dv + j];
      const s = Sprev[i * dv + j];
      gk[j] += a * g;
      sk[j] += a * s;
      dAlpha += g * s;
    }
  }
  let dBeta = 0;
  let gs = 0;
  for (let j = 0; j < dv; j++) {
    dBeta += gk[j] * (v[vo + j] - alpha * sk[j]);
    gs += gk[j] * sk[j];
    gvOut[vo + j] = beta * gk[j];
  }
  dAlpha -= beta * gs;
  const ab = alpha * beta;
  for (let i = 0; i < dk; i++) {
    let gsk = 0;
    let sgk = 0;
    let gv = 0;
    for (let j = 0; j < dv; j++) {
      const g = G[i * dv + j];
      gsk += g * sk[j];
      sgk += Sprev[i * dv + j] * gk[j];
      gv += g * v[vo + j];
    }
    gkOut[ko + i] = -ab * (gsk + sgk) + beta * gv;
  }
  for (let i = 0; i < dk; i++) {
    const a = beta * k[ko + i];
    for (let j = 0; j < dv; j++) G[i * dv + j] = alpha * (G[i * dv + j] - a * gk[j]);
  }
  return [dAlpha, dBeta];
}

/** G += scale · q̂ dyᵀ (the read y = scale·Sᵀq̂), and dq̂ = scale · S dy written at qo. */
export function readBackward(
  G: FloatArray,
  S: FloatArray,
  q: FloatArray,
  qo: number,
  dy: FloatArray,
  yo: number,
  scale: number,
  dk: number,
  dv: number,
  gqOut: FloatArray,
): void {
  for (let i = 0; i < dk; i++) {
    const a = scale * q[qo + i];
    let s = 0;
    for (let j = 0; j < dv; j++) {
      s += S[i * dv + j] * dy[yo + j];
      G[i * dv + j] += a * dy[yo + j];
    }
    gqOut[qo + i] = scale * s;
  }
}
