// Float32 fast path for linear attention: chunks of C tokens, causal C×C products inside a chunk,
// the running state (S, z) between chunks.
import type { FloatArray, SeqInput } from '../common.js';
import {
  beginBackward,
  beginForward,
  checkFiniteArrays,
  checkOptions,
  checkOut,
} from '../validate.js';
import {
  featureMap,
  featureMapBackward,
  type LinearConfig,
  type LinearState,
  linearSpec,
} from './state.js';

export const LINEAR_CHUNK = 64;

/** Same function as `linearAttention`, chunked in Float32; `out` (if given) receives the output. */
export function linearAttentionChunked(
  seq: SeqInput,
  config?: LinearConfig,
  options: { state?: LinearState; out?: Float32Array } = {},
): { output: Float32Array; state: LinearState } {
  const opts = checkOptions(options);
  const { base } = beginForward(linearSpec, seq, config, opts.state, 'options.state', true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const out = checkOut(opts.out, T * dv);
  const fq = featureMap(seq.q, new Float32Array(T * dk));
  const fk = featureMap(seq.k, new Float32Array(T * dk));
  const v = Float32Array.from(seq.v);
  const kv = Float32Array.from(base.kv);
  const kSum = Float32Array.from(base.kSum);
  const eps = base.config.eps;
  const C = LINEAR_CHUNK;
  for (let c0 = 0; c0 < T; c0 += C) {
    const n = Math.min(C, T - c0);
    for (let t = 0; t < n; t++) {
      const qo = (c0 + t) * dk;
      const yo = (c0 + t) * dv;
      let den = eps;
      for (let i = 0; i < dk; i++) den += fq[qo + i] * kSum[i];
      for (let j = 0; j < dv; j++) out[yo + j] = 0;
      for (let i = 0; i < dk; i++) {
        const a = fq[qo + i];
        for (let j = 0; j < dv; j++) out[yo + j] += a * kv[i * dv + j];
      }
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let i = 0, ko = (c0 + s) * dk; i < dk; i++) a += fq[qo + i] * fk[ko + i];
        den += a;
        for (let j = 0, vo = (c0 + s) * dv; j < dv; j++) out[yo + j] += a * v[vo + j];
      }
      const inv = 1 / den;
      for (let j = 0; j < dv; j++) out[yo + j] *= inv;
    }
    accumulateState(fk, v, c0, n, dk, dv, kv, kSum);
  }
  checkFiniteArrays('seq', { output: out, 'state.kv': kv, 'state.kSum': kSum }, 'Float32');
  return {
    output: out,
    state: {
      ...base,
      position: base.position + T,
      kv: Float64Array.from(kv),
      kSum: Float64Array.from(kSum),
    },
  };
}

/** S += Σ_chunk φ(k_s) v_sᵀ, z += Σ_chunk φ(k_s). */
function accumulateState(
  fk: Float32Array,
  v: Float32Array,
  c0: number,
  n: number,
  dk: number,
  dv: number,
  kv: Float32Array,
  kSum: Float32Array,
): void {
  for (let s = c0; s < c0 + n; s++) {
    for (let i = 0; i < dk; i++) {
      const a = fk[s * dk + i];
      kSum[i] += a;
      for (let j = 0; j < dv; j++) kv[i * dv + j] += a * v[s * dv + j];
    }
  }
}

/**
 * Float32 gradients from an empty state, two chunked sweeps: forward (dφ(q) from S, z at the chunk
 * start plus the in-chunk terms), then reverse (dφ(k), dv from the state gradient of later chunks).
 */
export function linearAttentionChunkedBackward(
  seq: SeqInput,
  config: LinearConfig | undefined,
  dOutput: FloatArray,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  const { eps } = beginBackward(linearSpec, seq, config, dOutput, true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const fq = featureMap(seq.q, new Float32Array(T * dk));
  const fk = featureMap(seq.k, new Float32Array(T * dk));
  const v = Float32Array.from(seq.v);
  const dy = Float32Array.from(dOutput);
  const C = LINEAR_CHUNK;
  const kv = new Float32Array(dk * dv);
  const kSum = new Float32Array(dk);
  const dNum = new Float32Array(T * dv);
  const dDen = new Float32Array(T);
  const gq = new Float32Array(T * dk);
  const y = new Float32Array(dv);
  for (let c0 = 0; c0 < T; c0 += C) {
    const n = Math.min(C, T - c0);
    for (let t = 0; t < n; t++) {
      const qo = (c0 + t) * dk;
      const yo = (c0 + t) * dv;
      let den = eps;
      for (let i = 0; i < dk; i++) den += fq[qo + i] * kSum[i];
      y.fill(0);
      for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) y[j] += fq[qo + i] * kv[i * dv + j];
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let i = 0, ko = (c0 + s) * dk; i < dk; i++) a += fq[qo + i] * fk[ko + i];
        den += a;
        for (let j = 0, vo = (c0 + s) * dv; j < dv; j++) y[j] += a * v[vo + j];
      }
      let dyy = 0;
      for (let j = 0; j < dv; j++) {
        dyy += dy[yo + j] * y[j];
        dNum[yo + j] = dy[yo + j] / den;
      }
      const dd = -dyy / (den * den);
      dDen[c0 + t] = dd;
      // dφ(q_t) = S_0 dnum_t + z_0 dden_t + Σ_{s≤t} (v_s·dnum_t + dden_t) φ(k_s)
      for (let i = 0; i < dk; i++) {
        let g = kSum[i] * dd;
        for (let j = 0; j < dv; j++) g += kv[i * dv + j] * dNum[yo + j];
        gq[qo + i] = g;
      }
      for (let s = 0; s <= t; s++) {
        let b = dd;
        for (let j = 0, vo = (c0 + s) * dv; j < dv; j++) b += v[vo + j] * dNum[yo + j];
        for (let i = 0, ko = (c0 + s) * dk; i < dk; i++) gq[qo + i] += b * fk[ko + i];
      }
    }
    accumulateState(fk, v, c0, n, dk, dv, kv, kSum);
  }
  const G = new Float32Array(dk * dv);
  const g = new Float32Array(dk);
  const gk = new Float32Array(T * dk);
  const gv = new Float32Array(T * dv);
  const lastChunk = T === 0 ? 0 : Math.floor((T - 1) / C) * C;
  for (let c0 = lastChunk; c0 >= 0 && T > 0; c0 -= C) {
    const n = Math.min(C, T - c0);
    for (let s = 0; s < n; s++) {
      const ko = (c0 + s) * dk;
      const vo = (c0 + s) * dv;
      for (let i = 0; i < dk; i++) {
        let a = g[i];
        for (let j = 0; j < dv; j++) a += G[i * dv + j] * v[vo + j];
        gk[ko + i] = a;
      }
      for (let j = 0; j < dv; j++) {
        let a = 0;
        for (let i = 0; i < dk; i++) a += G[i * dv + j] * fk[ko + i];
        gv[vo + j] = a;
      }
      for (let t = s; t < n; t++) {
        const qo = (c0 + t) * dk;
        const yo = (c0 + t) * dv;
        let a = 0;
        let b = dDen[c0 + t];
        for (let i = 0; i < dk; i++) a += fq[qo + i] * fk[ko + i];
        for (let j = 0; j < dv; j++) {
          b += dNum[yo + j] * v[vo + j];
          gv[vo + j] += a * dNum[yo + j];
        }
        for (let i = 0; i < dk; i++) gk[ko + i] += b * fq[qo + i];
      }
    }
    for (let t = c0; t < c0 + n; t++) {
      for (let i = 0; i < dk; i++) {
        const a = fq[t * dk + i];
        g[i] += a * dDen[t];
        for (let j = 0; j < dv; j++) G[i * dv + j] += a * dNum[t * dv + j];
      }
    }
  }
  featureMapBackward(seq.q, gq);
  featureMapBackward(seq.k, gk);
  checkFiniteArrays('seq', { dq: gq, dk: gk, dv: gv }, 'Float32');
  return { dq: gq, dk: gk, dv: gv };
}
