// Float32 fast path for scalar-decay linear attention (SSD chunked form): inside a chunk the
// pairwise decay e^{b_t − b_s} (b = cumulative log decay) weights a causal C×C product; between
// chunks the state S carries everything older.
import type { FloatArray } from '../common.js';
import {
  beginBackward,
  beginForward,
  checkFiniteArrays,
  checkOptions,
  checkOut,
} from '../validate.js';
import {
  type DecayLinearConfig,
  type DecayLinearState,
  type DecaySeq,
  decayLinearSpec,
} from './state.js';

export const DECAY_CHUNK = 64;

/** b_t = Σ_{c0 ≤ j ≤ t} ln a_j for one chunk, into b[0..n) (float64: b_t − b_s stays exact). */
function chunkLogDecay(decay: FloatArray, c0: number, n: number, b: Float64Array): void {
  let acc = 0;
  for (let t = 0; t < n; t++) b[t] = acc += Math.log(decay[c0 + t]);
}

/** S ← e^{b_{n−1}} S + Σ_s e^{b_{n−1} − b_s} k_s v_sᵀ. */
function advanceState(
  kv: Float32Array,
  k: Float32Array,
  v: Float32Array,
  b: Float64Array,
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
  const opts = checkOptions(options);
  const { base } = beginForward(decayLinearSpec, seq, config, opts.state, 'options.state', true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const out = checkOut(opts.out, T * dv);
  const { scale } = base.config;
  const q = Float32Array.from(seq.q);
  const k = Float32Array.from(seq.k);
  const v = Float32Array.from(seq.v);
  const kv = Float32Array.from(base.kv);
  const C = DECAY_CHUNK;
  const b = new Float64Array(C);
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
  checkFiniteArrays('seq', { output: out, 'state.kv': kv }, 'Float32');
  return {
    output: out,
    state: { ...base, position: base.position + T, kv: Float64Array.from(kv) },
  };
}

/**
 * Float32 gradients from an empty state in two chunked sweeps (forward: dq; reverse: dk, dv with
 * the state gradient G). dDecay_t = ⟨G_t, S_{t−1}⟩ is assembled per chunk from the same pairwise
 * products, as sums of e^{(sum of the other decays' logs)} terms: nothing is divided by a_t, so a
 * small decay loses no precision (the d ln a identity Σ (q·dq − k·dk) / a_t cancels to ~1e-7 and
 * then divides by a_t).
 */
export function decayLinearAttentionChunkedBackward(
  seq: DecaySeq,
  config: DecayLinearConfig | undefined,
  dOutput: FloatArray,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array; dDecay: Float32Array } {
  const { scale } = beginBackward(decayLinearSpec, seq, config, dOutput, true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const decay = seq.decay;
  const q = Float32Array.from(seq.q);
  const k = Float32Array.from(seq.k);
  const v = Float32Array.from(seq.v);
  const dy = Float32Array.from(dOutput);
  const C = DECAY_CHUNK;
  const m = dk * dv;
  const b = new Float64Array(C);
  const kv = new Float32Array(m);
  const starts = new Float32Array(Math.ceil(T / C) * m); // S entering each chunk
  const readIn = new Float64Array(T); // P_u = scale·q_uᵀ S_in dy_u (the read of the chunk-start state)
  const gq = new Float32Array(T * dk);
  for (let c0 = 0; c0 < T; c0 += C) {
    const n = Math.min(C, T - c0);
    starts.set(kv, (c0 / C) * m);
    chunkLogDecay(decay, c0, n, b);
    for (let t = 0; t < n; t++) {
      const qo = (c0 + t) * dk;
      const yo = (c0 + t) * dv;
      const w0 = scale * Math.exp(b[t]);
      let p = 0;
      for (let i = 0; i < dk; i++) {
        let a = 0;
        for (let j = 0; j < dv; j++) a += kv[i * dv + j] * dy[yo + j];
        gq[qo + i] = w0 * a;
        p += q[qo + i] * a;
      }
      readIn[c0 + t] = scale * p;
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let j = 0, vo = (c0 + s) * dv; j < dv; j++) a += v[vo + j] * dy[yo + j];
        a *= scale * Math.exp(b[t] - b[s]);
        for (let i = 0, ko = (c0 + s) * dk; i < dk; i++) gq[qo + i] += a * k[ko + i];
      }
    }
    advanceState(kv, k, v, b, c0, n, dk, dv);
  }
  const G = new Float32Array(m);
  const gk = new Float32Array(T * dk);
  const gv = new Float32Array(T * dv);
  const gDecay = new Float32Array(T);
  const E = new Float64Array(C * C); // E[u·C + s] = e^{b_u − b_s}, s ≤ u
  const X = new Float64Array(C * C); // X[u·C + s] = (q_u·k_s)(dy_u·v_s), s ≤ u
  const K = new Float64Array(C); // K_s = k_sᵀ H v_s, H = G from later chunks
  const Y = new Float64Array(C);
  const lastChunk = T === 0 ? 0 : Math.floor((T - 1) / C) * C;
  for (let c0 = lastChunk; c0 >= 0 && T > 0; c0 -= C) {
    const n = Math.min(C, T - c0);
    chunkLogDecay(decay, c0, n, b);
    const last = b[n - 1];
    for (let s = 0; s < n; s++) {
      const ko = (c0 + s) * dk;
      const vo = (c0 + s) * dv;
      const w = Math.exp(last - b[s]);
      let hv = 0;
      for (let i = 0; i < dk; i++) {
        let a = 0;
        for (let j = 0; j < dv; j++) a += G[i * dv + j] * v[vo + j];
        gk[ko + i] = w * a;
        hv += k[ko + i] * a;
      }
      K[s] = hv;
      for (let j = 0; j < dv; j++) {
        let a = 0;
        for (let i = 0; i < dk; i++) a += G[i * dv + j] * k[ko + i];
        gv[vo + j] = w * a;
      }
      for (let t = s; t < n; t++) {
        const qo = (c0 + t) * dk;
        const yo = (c0 + t) * dv;
        const decayTS = Math.exp(b[t] - b[s]);
        const e = scale * decayTS;
        let dyv = 0;
        let qk = 0;
        for (let j = 0; j < dv; j++) dyv += dy[yo + j] * v[vo + j];
        for (let i = 0; i < dk; i++) qk += q[qo + i] * k[ko + i];
        E[t * C + s] = decayTS;
        X[t * C + s] = qk * dyv;
        dyv *= e;
        qk *= e;
        for (let i = 0; i < dk; i++) gk[ko + i] += dyv * q[qo + i];
        for (let j = 0; j < dv; j++) gv[vo + j] += qk * dy[yo + j];
      }
    }
    chunkDecayGradient(decay, c0, n, b, E, X, K, Y, readIn, G, starts, scale, gDecay);
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
  checkFiniteArrays('seq', { dq: gq, dk: gk, dv: gv, dDecay: gDecay }, 'Float32');
  return { dq: gq, dk: gk, dv: gv, dDecay: gDecay };
}

/**
 * dDecay_t = ⟨G_t, S_{t−1}⟩ for the tokens of one chunk. With B the chunk's cumulative log decay,
 * S_in the state entering it and H the gradient arriving from later chunks,
 *   S_{t−1} = e^{B_{t−1}} S_in + Σ_{s<t} e^{B_{t−1}−B_s} k_s v_sᵀ,
 *   G_t     = Σ_{u≥t} e^{B_u−B_t} scale q_u dy_uᵀ + e^{B_last−B_t} H,
 * so the product is four sums whose weights are products of the other tokens' decays, each formed
 * by a recurrence that only multiplies by a decay (Y, R forward; Q backward) or by exp of a sum.
 */
function chunkDecayGradient(
  decay: FloatArray,
  c0: number,
  n: number,
  b: Float64Array,
  E: Float64Array,
  X: Float64Array,
  K: Float64Array,
  Y: Float64Array,
  readIn: Float64Array,
  H: Float32Array,
  starts: Float32Array,
  scale: number,
  gDecay: Float32Array,
): void {
  const C = DECAY_CHUNK;
  const m = H.length;
  const sIn = starts.subarray((c0 / C) * m, (c0 / C + 1) * m);
  let hs = 0; // ⟨H, S_in⟩
  for (let x = 0; x < m; x++) hs += H[x] * sIn[x];
  // Q_t = Σ_{u≥t} e^{B_u−B_t} P_u, by Q_t = P_t + a_{t+1} Q_{t+1}.
  const Q = new Float64Array(n);
  let acc = 0;
  for (let t = n - 1; t >= 0; t--) {
    acc = readIn[c0 + t] + (t + 1 < n ? decay[c0 + t + 1] * acc : 0);
    Q[t] = acc;
  }
  Y.fill(0, 0, n); // Y[u] = Σ_{s<t} e^{B_{t−1}−B_s} X[u][s]
  let R = 0; // Σ_{s<t} e^{B_{t−1}−B_s} K_s
  for (let t = 0; t < n; t++) {
    const before = t === 0 ? 1 : Math.exp(b[t - 1]); // e^{B_{t−1}}
    const toLast = E[(n - 1) * C + t]; // e^{B_last − B_t}
    let local = 0;
    for (let u = t; u < n; u++) local += E[u * C + t] * Y[u];
    gDecay[c0 + t] = scale * local + before * Q[t] + toLast * (R + before * hs);
    const a = decay[c0 + t];
    for (let u = t + 1; u < n; u++) Y[u] = a * Y[u] + X[u * C + t];
    R = a * R + K[t];
  }
}
