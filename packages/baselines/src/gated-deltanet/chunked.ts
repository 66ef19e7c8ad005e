// Float32 fast path for Gated DeltaNet, chunked (UT/WY form): inside a chunk of C tokens the
// pseudo-values u solve a unit-lower-triangular system (I + A) u = β(v − γ S_0ᵀk̂), with
// A_ts = β_t (γ_t/γ_s) k̂_t·k̂_s for s < t and γ = cumulative α; outputs and the next state are
// then plain products, so the state is touched once per chunk rather than once per token.
import { type FloatArray, normalizeRows, normalizeRowsBackward } from '../common.js';
import {
  beginBackward,
  beginForward,
  checkFiniteArrays,
  checkOptions,
  checkOut,
} from '../validate.js';
import type { GatedDeltaNetGradients } from './reference.js';
import {
  type GatedDeltaNetConfig,
  type GatedDeltaNetState,
  type GdnSeq,
  gatedDeltaNetSpec,
} from './state.js';
import { deltaStep, deltaStepBackward, readBackward } from './step.js';

export const GDN_CHUNK = 64;

/** Scratch for one chunk, allocated once per call. */
function chunkScratch(C: number, dv: number) {
  return { b: new Float32Array(C), KK: new Float32Array(C * C), U: new Float32Array(C * dv) };
}

/**
 * Advances S over tokens [c0, c0+n) and, when `out` is given, writes their outputs. q, k unit rows.
 */
function chunkForward(
  S: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  alpha: FloatArray,
  beta: FloatArray,
  c0: number,
  n: number,
  dk: number,
  dv: number,
  scale: number,
  scratch: ReturnType<typeof chunkScratch>,
  out: Float32Array | null,
): void {
  const { b, KK, U } = scratch;
  const C = b.length;
  let acc = 0;
  for (let t = 0; t < n; t++) b[t] = acc += Math.log(alpha[c0 + t]);
  for (let t = 0; t < n; t++) {
    for (let s = 0; s < t; s++) {
      let a = 0;
      for (let i = 0, to = (c0 + t) * dk, so = (c0 + s) * dk; i < dk; i++)
        a += k[to + i] * k[so + i];
      KK[t * C + s] = a * Math.exp(b[t] - b[s]);
    }
  }
  // Right-hand side β_t (v_t − γ_t S_0ᵀk̂_t), then forward substitution for u.
  for (let t = 0; t < n; t++) {
    const uo = t * dv;
    const g = Math.exp(b[t]);
    for (let j = 0; j < dv; j++) U[uo + j] = 0;
    for (let i = 0, ko = (c0 + t) * dk; i < dk; i++) {
      const a = g * k[ko + i];
      for (let j = 0; j < dv; j++) U[uo + j] += a * S[i * dv + j];
    }
    const bt = beta[c0 + t];
    for (let j = 0; j < dv; j++) U[uo + j] = bt * (v[(c0 + t) * dv + j] - U[uo + j]);
    for (let s = 0; s < t; s++) {
      const a = bt * KK[t * C + s];
      for (let j = 0; j < dv; j++) U[uo + j] -= a * U[s * dv + j];
    }
  }
  if (out) {
    for (let t = 0; t < n; t++) {
      const qo = (c0 + t) * dk;
      const yo = (c0 + t) * dv;
      const g = scale * Math.exp(b[t]);
      for (let j = 0; j < dv; j++) out[yo + j] = 0;
      for (let i = 0; i < dk; i++) {
        const a = g * q[qo + i];
        for (let j = 0; j < dv; j++) out[yo + j] += a * S[i * dv + j];
      }
      for (let s = 0; s <= t; s++) {
        let a = 0;
        for (let i = 0, so = (c0 + s) * dk; i < dk; i++) a += q[qo + i] * k[so + i];
        a *= scale * Math.exp(b[t] - b[s]);
        for (let j = 0; j < dv; j++) out[yo + j] += a * U[s * dv + j];
      }
    }
  }
  // S_end = γ_n S_0 + Σ_s (γ_n/γ_s) k̂_s u_sᵀ
  const last = b[n - 1];
  const total = Math.exp(last);
  for (let x = 0; x < S.length; x++) S[x] *= total;
  for (let s = 0; s < n; s++) {
    const w = Math.exp(last - b[s]);
    for (let i = 0, so = (c0 + s) * dk; i < dk; i++) {
      const a = w * k[so + i];
      for (let j = 0; j < dv; j++) S[i * dv + j] += a * U[s * dv + j];
    }
  }
}

/** Same function as `gatedDeltaNet`, chunked in Float32; `out` (if given) receives the output. */
export function gatedDeltaNetChunked(
  seq: GdnSeq,
  config?: GatedDeltaNetConfig,
  options: { state?: GatedDeltaNetState; out?: Float32Array } = {},
): { output: Float32Array; state: GatedDeltaNetState } {
  const opts = checkOptions(options);
  const { base } = beginForward(gatedDeltaNetSpec, seq, config, opts.state, 'options.state', true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const out = checkOut(opts.out, T * dv);
  const q = new Float32Array(T * dk);
  const k = new Float32Array(T * dk);
  normalizeRows(seq.q, T, dk, q);
  normalizeRows(seq.k, T, dk, k);
  const v = Float32Array.from(seq.v);
  const S = Float32Array.from(base.kv);
  const scratch = chunkScratch(GDN_CHUNK, dv);
  for (let c0 = 0; c0 < T; c0 += GDN_CHUNK) {
    const n = Math.min(GDN_CHUNK, T - c0);
    chunkForward(S, q, k, v, seq.alpha, seq.beta, c0, n, dk, dv, base.config.scale, scratch, out);
  }
  checkFiniteArrays('seq', { output: out, 'state.kv': S }, 'Float32');
  return { output: out, state: { ...base, position: base.position + T, kv: Float64Array.from(S) } };
}

/**
 * Float32 gradients from an empty state: a chunked forward sweep checkpoints S at every chunk
 * start; the reverse sweep replays each chunk's C per-token states from its checkpoint and runs
 * the per-token reverse recurrence on them (memory O(T/C·dk·dv + C·dk·dv), no full T-history).
 */
export function gatedDeltaNetChunkedBackward(
  seq: GdnSeq,
  config: GatedDeltaNetConfig | undefined,
  dOutput: FloatArray,
): GatedDeltaNetGradients<Float32Array> {
  const { scale } = beginBackward(gatedDeltaNetSpec, seq, config, dOutput, true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const q = new Float32Array(T * dk);
  const k = new Float32Array(T * dk);
  const qNorm = normalizeRows(seq.q, T, dk, q);
  const kNorm = normalizeRows(seq.k, T, dk, k);
  const v = Float32Array.from(seq.v);
  const dy = Float32Array.from(dOutput);
  const C = GDN_CHUNK;
  const m = dk * dv;
  const chunks = Math.ceil(T / C);
  const checkpoints = new Float32Array(chunks * m);
  const S = new Float32Array(m);
  const scratch = chunkScratch(C, dv);
  for (let c = 0; c < chunks; c++) {
    checkpoints.set(S, c * m);
    chunkForward(
      S,
      q,
      k,
      v,
      seq.alpha,
      seq.beta,
      c * C,
      Math.min(C, T - c * C),
      dk,
      dv,
      scale,
      scratch,
      null,
    );
  }
  const g: GatedDeltaNetGradients<Float32Array> = {
    dq: new Float32Array(T * dk),
    dk: new Float32Array(T * dk),
    dv: new Float32Array(T * dv),
    dAlpha: new Float32Array(T),
    dBeta: new Float32Array(T),
  };
  const local = new Float32Array((C + 1) * m); // local[t] = S before token c0 + t
  const G = new Float32Array(m);
  const u = new Float32Array(dv);
  const gk = new Float32Array(dv);
  const sk = new Float32Array(dv);
  for (let c = chunks - 1; c >= 0; c--) {
    const c0 = c * C;
    const n = Math.min(C, T - c0);
    local.set(checkpoints.subarray(c * m, (c + 1) * m));
    for (let t = 0; t < n; t++) {
      const St = local.subarray((t + 1) * m, (t + 2) * m);
      St.set(local.subarray(t * m, (t + 1) * m));
      deltaStep(
        St,
        k,
        (c0 + t) * dk,
        v,
        (c0 + t) * dv,
        seq.alpha[c0 + t],
        seq.beta[c0 + t],
        dk,
        dv,
        u,
      );
    }
    for (let t = n - 1; t >= 0; t--) {
      const x = c0 + t;
      readBackward(
        G,
        local.subarray((t + 1) * m, (t + 2) * m),
        q,
        x * dk,
        dy,
        x * dv,
        scale,
        dk,
        dv,
        g.dq,
      );
      const Sprev = local.subarray(t * m, (t + 1) * m);
      const [da, db] = deltaStepBackward(
        G,
        Sprev,
        k,
        x * dk,
        v,
        x * dv,
        seq.alpha[x],
        seq.beta[x],
        dk,
        dv,
        g.dk,
        g.dv,
        gk,
        sk,
      );
      g.dAlpha[x] = da;
      g.dBeta[x] = db;
    }
  }
  normalizeRowsBackward(q, qNorm, T, dk, g.dq);
  normalizeRowsBackward(k, kNorm, T, dk, g.dk);
  checkFiniteArrays('seq', g, 'Float32');
  return g;
}
