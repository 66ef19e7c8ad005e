// Float64 reference for linear attention (Katharopoulos et al. 2020): a plain loop over time.
import type { FloatArray, SeqInput } from '../common.js';
import { beginBackward, beginForward, checkFiniteArrays, fail } from '../validate.js';
import {
  checkLinearState,
  featureMap,
  featureMapBackward,
  type LinearConfig,
  type LinearState,
  linearSpec,
} from './state.js';

/** Overflow guard: an infinite φ(q)·z would silently turn every output of the token into 0. */
function checkDenominator(den: number, t: number): void {
  if (!Number.isFinite(den)) {
    fail(
      'seq.q, seq.k',
      den,
      'inputs whose φ(q)·Σφ(k) stays finite (scale q and k down)',
      `overflowed: the normaliser of token ${t} is ${den}`,
    );
  }
}

/** y_t = Σ_{s≤t} (φ(q_t)·φ(k_s)) v_s / (Σ_{s≤t} φ(q_t)·φ(k_s) + eps), φ = elu + 1. */
export function linearAttention(
  seq: SeqInput,
  config?: LinearConfig,
  initialState?: LinearState,
): { output: Float64Array; state: LinearState } {
  const { base } = beginForward(linearSpec, seq, config, initialState, 'initialState', false);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const kv = base.kv.slice();
  const kSum = base.kSum.slice();
  const fq = featureMap(seq.q, new Float64Array(T * dk));
  const fk = featureMap(seq.k, new Float64Array(T * dk));
  const output = new Float64Array(T * dv);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < dk; i++) {
      const a = fk[t * dk + i];
      kSum[i] += a;
      for (let j = 0; j < dv; j++) kv[i * dv + j] += a * seq.v[t * dv + j];
    }
    let den = base.config.eps;
    for (let i = 0; i < dk; i++) den += fq[t * dk + i] * kSum[i];
    checkDenominator(den, t);
    for (let i = 0; i < dk; i++) {
      const a = fq[t * dk + i] / den;
      for (let j = 0; j < dv; j++) output[t * dv + j] += a * kv[i * dv + j];
    }
  }
  checkFiniteArrays('seq', { output, 'state.kv': kv, 'state.kSum': kSum }, 'float64');
  return { output, state: { ...base, position: base.position + T, kv, kSum } };
}

/** Streams `seq` into `state` (mutated only after every check passed); returns the outputs. */
export function linearAppend(state: LinearState, seq: SeqInput): Float64Array {
  checkLinearState(state, 'state');
  const { output, state: next } = linearAttention(seq, undefined, state);
  Object.assign(state, next);
  return output;
}

/**
 * Exact float64 gradients from an empty state. Forward pass: dφ(q) = S_t dnum_t + z_t dden_t;
 * reverse pass: G = Σ_{u≥t} φ(q_u) dnum_uᵀ gives dφ(k_t) = G v_t + g, dv_t = Gᵀ φ(k_t).
 */
export function linearAttentionBackward(
  seq: SeqInput,
  config: LinearConfig | undefined,
  dOutput: FloatArray,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const { eps } = beginBackward(linearSpec, seq, config, dOutput, false);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const fq = featureMap(seq.q, new Float64Array(T * dk));
  const fk = featureMap(seq.k, new Float64Array(T * dk));
  const kv = new Float64Array(dk * dv);
  const kSum = new Float64Array(dk);
  const dNum = new Float64Array(T * dv);
  const dDen = new Float64Array(T);
  const gq = new Float64Array(T * dk);
  const y = new Float64Array(dv);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < dk; i++) {
      kSum[i] += fk[t * dk + i];
      for (let j = 0; j < dv; j++) kv[i * dv + j] += fk[t * dk + i] * seq.v[t * dv + j];
    }
    let den = eps;
    for (let i = 0; i < dk; i++) den += fq[t * dk + i] * kSum[i];
    checkDenominator(den, t);
    y.fill(0);
    for (let i = 0; i < dk; i++)
      for (let j = 0; j < dv; j++) y[j] += (fq[t * dk + i] * kv[i * dv + j]) / den;
    let dyy = 0;
    for (let j = 0; j < dv; j++) {
      dNum[t * dv + j] = dOutput[t * dv + j] / den;
      dyy += dOutput[t * dv + j] * y[j];
    }
    dDen[t] = -dyy / den;
    for (let i = 0; i < dk; i++) {
      let g = kSum[i] * dDen[t];
      for (let j = 0; j < dv; j++) g += kv[i * dv + j] * dNum[t * dv + j];
      gq[t * dk + i] = g;
    }
  }
  const G = new Float64Array(dk * dv);
  const g = new Float64Array(dk);
  const gk = new Float64Array(T * dk);
  const gv = new Float64Array(T * dv);
  for (let t = T - 1; t >= 0; t--) {
    for (let i = 0; i < dk; i++) {
      const a = fq[t * dk + i];
      g[i] += a * dDen[t];
      for (let j = 0; j < dv; j++) G[i * dv + j] += a * dNum[t * dv + j];
    }
    for (let i = 0; i < dk; i++) {
      let s = g[i];
      const b = fk[t * dk + i];
      for (let j = 0; j < dv; j++) {
        s += G[i * dv + j] * seq.v[t * dv + j];
        gv[t * dv + j] += G[i * dv + j] * b;
      }
      gk[t * dk + i] = s;
    }
  }
  featureMapBackward(seq.q, gq);
  featureMapBackward(seq.k, gk);
  checkFiniteArrays('seq', { dq: gq, dk: gk, dv: gv }, 'float64');
  return { dq: gq, dk: gk, dv: gv };
}
