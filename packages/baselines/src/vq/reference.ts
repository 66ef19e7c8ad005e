// Float64 reference for Transformer-VQ attention: a plain loop over time.
import type { FloatArray } from '../common.js';
import { beginBackward, beginForward, checkFiniteArrays } from '../validate.js';
import {
  checkVqState,
  nearestCode,
  type VqConfig,
  type VqSeq,
  type VqState,
  vqSpec,
} from './state.js';

/**
 * Keys are replaced by their nearest code c_{z_s}. Query t in block b = ⌊t/L⌋ reads, in one softmax,
 * every token of blocks b−1 and b up to t (logit β q_t·c_{z_s}, value v_s) and one row per code for
 * all older tokens (logit β q_t·c_j + ln n_j, value Σv/n_j). This equals causal softmax attention
 * over the quantised keys; the block split only decides where gradients go (see backward).
 */
export function vqAttention(
  seq: VqSeq,
  config: VqConfig | undefined,
  initialState?: VqState,
): { output: Float64Array; state: VqState } {
  const { base, config: c } = beginForward(
    vqSpec,
    seq,
    config,
    initialState,
    'initialState',
    false,
  );
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const { codebookSize: S, blockLength: L, beta } = c;
  const cb = seq.codebook;
  const counts = base.counts.slice();
  const sums = base.valueSums.slice();
  const codes = [...base.recentCodes];
  const values = [...base.recentValues];
  let firstRecent = base.position - base.recentLength; // stream position of codes[0]
  const output = new Float64Array(T * dv);
  const codeLogit = new Float64Array(S);
  for (let t = 0; t < T; t++) {
    const p = base.position + t;
    const cacheEnd = Math.max(0, (Math.floor(p / L) - 1) * L);
    while (firstRecent < cacheEnd) {
      const z = codes.shift()!;
      counts[z] += 1;
      for (let j = 0; j < dv; j++) sums[z * dv + j] += values[j];
      values.splice(0, dv);
      firstRecent++;
    }
    codes.push(nearestCode(seq.k, t * dk, cb, S, dk));
    for (let j = 0; j < dv; j++) values.push(seq.v[t * dv + j]);
    for (let z = 0; z < S; z++) {
      let d = 0;
      for (let i = 0; i < dk; i++) d += seq.q[t * dk + i] * cb[z * dk + i];
      codeLogit[z] = beta * d;
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let z = 0; z < S; z++)
      if (counts[z] > 0) max = Math.max(max, codeLogit[z] + Math.log(counts[z]));
    for (const z of codes) max = Math.max(max, codeLogit[z]);
    let sum = 0;
    const y = output.subarray(t * dv, (t + 1) * dv);
    for (let z = 0; z < S; z++) {
      if (counts[z] === 0) continue;
      const w = Math.exp(codeLogit[z] - max); // e^{ℓ + ln n}·(Σv/n) = e^{ℓ}·Σv
      sum += w * counts[z];
      for (let j = 0; j < dv; j++) y[j] += w * sums[z * dv + j];
    }
    for (let r = 0; r < codes.length; r++) {
      const w = Math.exp(codeLogit[codes[r]] - max);
      sum += w;
      for (let j = 0; j < dv; j++) y[j] += w * values[r * dv + j];
    }
    for (let j = 0; j < dv; j++) y[j] /= sum;
  }
  checkFiniteArrays('seq', { output, 'state.valueSums': sums }, 'float64');
  return {
    output,
    state: {
      ...base,
      position: base.position + T,
      counts,
      valueSums: sums,
      recentLength: codes.length,
      recentCodes: Float64Array.from(codes),
      recentValues: Float64Array.from(values),
    },
  };
}

/** Streams `seq` into `state` (mutated only after every check passed); returns the outputs. */
export function vqAppend(state: VqState, seq: VqSeq): Float64Array {
  checkVqState(state, 'state');
  const { output, state: next } = vqAttention(seq, undefined, state);
  Object.assign(state, next);
  return output;
}

export type VqGradients<A> = { dq: A; dk: A; dv: A; dCodebook: A };

/**
 * Float64 gradients from an empty state. Discrete code choices are constants. The raw (current and
 * previous block) keys are straight-through estimates k + sg(c_z − k): their logit gradient goes to
 * dk. The per-code cache rows use the codebook itself: their logit gradient goes to dCodebook, and
 * the value sums pass p/n·dy to every cached value. The total derivative with respect to the
 * codebook (keys held fixed) is therefore dCodebook + Σ_{s: z_s = j} dk_s. With
 * `config.cacheKeyGradient`, each cache row's logit gradient also goes, split equally, to the keys
 * it holds (dk_s += ds_j/n_j · q_t for every cached s with z_s = j).
 */
export function vqAttentionBackward(
  seq: VqSeq,
  config: VqConfig,
  dOutput: FloatArray,
): VqGradients<Float64Array> {
  const c = beginBackward(vqSpec, seq, config, dOutput, false);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const { codebookSize: S, blockLength: L, beta } = c;
  const cb = seq.codebook;
  const q = seq.q;
  const z = new Int32Array(T);
  for (let t = 0; t < T; t++) z[t] = nearestCode(seq.k, t * dk, cb, S, dk);
  const g: VqGradients<Float64Array> = {
    dq: new Float64Array(T * dk),
    dk: new Float64Array(T * dk),
    dv: new Float64Array(T * dv),
    dCodebook: new Float64Array(S * dk),
  };
  const counts = new Float64Array(S);
  const sums = new Float64Array(S * dv);
  const codeLogit = new Float64Array(S);
  const pCode = new Float64Array(S);
  const pTok = new Float64Array(T);
  const dsCode = new Float64Array(S);
  const cacheKeys = config.cacheKeyGradient === true;
  let cached = 0;
  for (let t = 0; t < T; t++) {
    const cacheEnd = Math.max(0, (Math.floor(t / L) - 1) * L);
    for (; cached < cacheEnd; cached++) {
      counts[z[cached]] += 1;
      for (let j = 0; j < dv; j++) sums[z[cached] * dv + j] += seq.v[cached * dv + j];
    }
    for (let s = 0; s < S; s++) {
      let d = 0;
      for (let i = 0; i < dk; i++) d += q[t * dk + i] * cb[s * dk + i];
      codeLogit[s] = beta * d;
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let s = 0; s < S; s++)
      if (counts[s] > 0) max = Math.max(max, codeLogit[s] + Math.log(counts[s]));
    for (let s = cacheEnd; s <= t; s++) max = Math.max(max, codeLogit[z[s]]);
    let sum = 0;
    for (let s = 0; s < S; s++)
      sum += pCode[s] = counts[s] > 0 ? Math.exp(codeLogit[s] + Math.log(counts[s]) - max) : 0;
    for (let s = cacheEnd; s <= t; s++) sum += pTok[s] = Math.exp(codeLogit[z[s]] - max);
    const dy = dOutput.subarray(t * dv, (t + 1) * dv);
    // D = dy·y with y = Σ_j p_j mean_j + Σ_s p_s v_s.
    let D = 0;
    for (let s = 0; s < S; s++) {
      if (counts[s] === 0) continue;
      pCode[s] /= sum;
      for (let j = 0; j < dv; j++) D += pCode[s] * dy[j] * (sums[s * dv + j] / counts[s]);
    }
    for (let s = cacheEnd; s <= t; s++) {
      pTok[s] /= sum;
      for (let j = 0; j < dv; j++) D += pTok[s] * dy[j] * seq.v[s * dv + j];
    }
    for (let s = 0; s < S; s++) {
      if (counts[s] === 0) continue;
      let dp = 0;
      for (let j = 0; j < dv; j++) dp += dy[j] * (sums[s * dv + j] / counts[s]);
      const ds = beta * pCode[s] * (dp - D);
      dsCode[s] = ds;
      for (let i = 0; i < dk; i++) {
        g.dq[t * dk + i] += ds * cb[s * dk + i];
        g.dCodebook[s * dk + i] += ds * q[t * dk + i];
      }
    }
    for (let s = 0; s < cacheEnd; s++) {
      const w = pCode[z[s]] / counts[z[s]];
      for (let j = 0; j < dv; j++) g.dv[s * dv + j] += w * dy[j];
      if (!cacheKeys) continue;
      const share = dsCode[z[s]] / counts[z[s]];
      for (let i = 0; i < dk; i++) g.dk[s * dk + i] += share * q[t * dk + i];
    }
    for (let s = cacheEnd; s <= t; s++) {
      let dp = 0;
      for (let j = 0; j < dv; j++) {
        dp += dy[j] * seq.v[s * dv + j];
        g.dv[s * dv + j] += pTok[s] * dy[j];
      }
      const ds = beta * pTok[s] * (dp - D);
      for (let i = 0; i < dk; i++) {
        g.dq[t * dk + i] += ds * cb[z[s] * dk + i];
        g.dk[s * dk + i] += ds * q[t * dk + i];
      }
    }
  }
  checkFiniteArrays('seq', g, 'float64');
  return g;
}
