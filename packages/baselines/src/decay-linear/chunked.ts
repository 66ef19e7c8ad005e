// Float32 fast path for scalar-decay linear attention (SSD chunked form): inside a chunk the
// pairwise decay e^{b_t − b_s} (b = cumulative log decay) weights a causal C×C product; between
// chunks the state S carries everything older.
import type { FloatArray } from '../common.js';
import { checkDOutput, checkOut, checkSameConfig, checkState } from '../validate.js';
import {
  checkDecaySeq,
  createDecayLinearState,
  type DecayLinearConfig,
  type DecayLinearState,
  type DecaySeq,
  resolveDecayLinearConfig,
} from './state.js';

export const DECAY_CHUNK = 64;

/** b_t = Σ_{c0 ≤ j ≤ t} ln a_j for one chunk, into b[0..n). */
function chunkLogDecay(decay: FloatArray, c0: number, n: number, b: Float32Array): void {
  let acc = 0;
  for (let t = 0; t < n; t++) b[t] = acc += Math.log(decay[c0 + t]);
}

/** S ← e^{b_{n−1}} S + Σ_s e^{b_{n−1} − b_s} k_s v_sᵀ. */
function advanceState(
  kv: Float32Array,
  k: Float32Array,
  v: Float32Array,
  b: Float32Array,
  c0: number,
  n: number,
  dk: number,
  dv: number,
): void {
  const last = b[n - 1];
  const total = Math.exp(last);
  for (let x = 0; x < kv.length; x++) kv[x] *= total;
  for (let s = 0; s < n; s++) {
    const w = Math.exp(last - b[s]);
    for (let i = 0; i < dk; i++) {
      const a = w * k[(c0 + s) * dk + i];
      for (let j = 0; j < dv; j++) kv[i * dv + j] += a * v[(c0 + s) * dv + j];
    }
  }
}

/** Same function as `decayLinearAttention`, chunked in Float32; `out` (if given) receives the output. */
export function decayLinearAttentionChunked(
  seq: DecaySeq,
  config?: DecayLinearConfig,
  options: { state?: DecayLinearState; out?: Float32Array } = {},
): { output: Float32Array; state: DecayLinearState } {
  const initial = options.state;
  checkDecaySeq(seq, initial);
  if (initial) {
    checkState(initial, 'decay-linear');
    if (config !== undefined) checkSameConfig(initial.config, resolveDecayLinearConfig(config));
  }
  const base = initial ?? createDecayLinearState(seq, config);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const out = checkOut(options.out, T * dv);
  const { scale } = base.config;
  const q = Float32Array.from(seq.q);
  const k = Float32Array.from(seq.k);
  const v = Float32Array.from(seq.v);
  const kv = Float32Array.from(base.kv);
  const C = DECAY_CHUNK;
  const b = new Float32Array(C);
  for (let c0 = 0; c0 < T; c0 += C) {
    const n = Math.min(C, T - c0);
    chunkLogDecay(seq.decay, c0, n, b);
    for (let t = 0; t < n; t++) {
      const qo = (c0 + t) * dk;
      const yo = (c0 + t) * dv;
      const w0 = scale * Math.exp(b[t]);
      for (let j = 0; j < dv; j++) out[yo + j] = 0;
      for (let i = 0; i < dk; i++) {
        const a = w0 * q[qo + i];
        for (let j = 0; j < dv; j++) out[yo + j] += a * kv[i * dv + j];
      }
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let i = 0, ko = (c0 + s) * dk; i < dk; i++) a += q[qo + i] * k[ko + i];
        a *= scale * Math.exp(b[t] - b[s]);
        for (let j = 0, vo = (c0 + s) * dv; j < dv; j++) out[yo + j] += a * v[vo + j];
      }
    }
    advanceState(kv, k, v, b, c0, n, dk, dv);
  }
  return {
    output: out,
    state: { ...base, position: base.position + T, kv: Float64Array.from(kv) },
  };
}

/**
 * Float32 gradients from an empty state in two chunked sweeps (forward: dq; reverse: dk, dv with
 * the state gradient G), then d ln a_t = Σ_{u ≥ t} (q_u·dq_u − k_u·dk_u): the SSD/GLA identity
 * ⟨G_t, a_t S_{t−1}⟩ = ⟨G_t, S_t⟩ − k_t·dk_t, with ⟨G_t, S_t⟩ = q_t·dq_t + ⟨G_{t+1}, a_{t+1} S_t⟩.
 */
export function decayLinearAttentionChunkedBackward(
  seq: DecaySeq,
  config: DecayLinearConfig | undefined,
  dOutput: FloatArray,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array; dDecay: Float32Array } {
  checkDecaySeq(seq);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  checkDOutput(dOutput, T, dv);
  const { scale } = resolveDecayLinearConfig(config);
  const q = Float32Array.from(seq.q);
  const k = Float32Array.from(seq.k);
  const v = Float32Array.from(seq.v);
  const dy = Float32Array.from(dOutput);
  const C = DECAY_CHUNK;
  const b = new Float32Array(C);
  const kv = new Float32Array(dk * dv);
  const gq = new Float32Array(T * dk);
  for (let c0 = 0; c0 < T; c0 += C) {
    const n = Math.min(C, T - c0);
    chunkLogDecay(seq.decay, c0, n, b);
    for (let t = 0; t < n; t++) {
      const qo = (c0 + t) * dk;
      const yo = (c0 + t) * dv;
      const w0 = scale * Math.exp(b[t]);
      for (let i = 0; i < dk; i++) {
        let a = 0;
        for (let j = 0; j < dv; j++) a += kv[i * dv + j] * dy[yo + j];
        gq[qo + i] = w0 * a;
      }
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let j = 0, vo = (c0 + s) * dv; j < dv; j++) a += v[vo + j] * dy[yo + j];
        a *= scale * Math.exp(b[t] - b[s]);
        for (let i = 0, ko = (c0 + s) * dk; i < dk; i++) gq[qo + i] += a * k[ko + i];
      }
    }
    advanceState(kv, k, v, b, c0, n, dk, dv);
  }
  const G = new Float32Array(dk * dv);
  const gk = new Float32Array(T * dk);
  const gv = new Float32Array(T * dv);
  const lastChunk = T === 0 ? 0 : Math.floor((T - 1) / C) * C;
  for (let c0 = lastChunk; c0 >= 0 && T > 0; c0 -= C) {
    const n = Math.min(C, T - c0);
    chunkLogDecay(seq.decay, c0, n, b);
    const last = b[n - 1];
    for (let s = 0; s < n; s++) {
      const ko = (c0 + s) * dk;
      const vo = (c0 + s) * dv;
      const w = Math.exp(last - b[s]);
      for (let i = 0; i < dk; i++) {
        let a = 0;
        for (let j = 0; j < dv; j++) a += G[i * dv + j] * v[vo + j];
        gk[ko + i] = w * a;
      }
      for (let j = 0; j < dv; j++) {
        let a = 0;
        for (let i = 0; i < dk; i++) a += G[i * dv + j] * k[ko + i];
        gv[vo + j] = w * a;
      }
      for (let t = s; t < n; t++) {
        const qo = (c0 + t) * dk;
        const yo = (c0 + t) * dv;
        const e = scale * Math.exp(b[t] - b[s]);
        let dyv = 0;
        let qk = 0;
        for (let j = 0; j < dv; j++) dyv += dy[yo + j] * v[vo + j];
        for (let i = 0; i < dk; i++) qk += q[qo + i] * k[ko + i];
        dyv *= e;
        qk *= e;
        for (let i = 0; i < dk; i++) gk[ko + i] += dyv * q[qo + i];
        for (let j = 0; j < dv; j++) gv[vo + j] += qk * dy[yo + j];
      }
    }
    // G at the chunk start: e^{b_last} G + scale Σ_t e^{b_t} q_t dy_tᵀ.
    const total = Math.exp(last);
    for (let x = 0; x < G.length; x++) G[x] *= total;
    for (let t = 0; t < n; t++) {
      const w = scale * Math.exp(b[t]);
      for (let i = 0; i < dk; i++) {
        const a = w * q[(c0 + t) * dk + i];
        for (let j = 0; j < dv; j++) G[i * dv + j] += a * dy[(c0 + t) * dv + j];
      }
    }
  }
  const gDecay = new Float32Array(T);
  let acc = 0;
  for (let t = T - 1; t >= 0; t--) {
    let qd = 0;
    let kd = 0;
    for (let i = 0; i < dk; i++) {
      qd += q[t * dk + i] * gq[t * dk + i];
      kd += k[t * dk + i] * gk[t * dk + i];
    }
    acc += qd - kd;
    gDecay[t] = acc / seq.decay[t];
  }
  return { dq: gq, dk: gk, dv: gv, dDecay: gDecay };
}
