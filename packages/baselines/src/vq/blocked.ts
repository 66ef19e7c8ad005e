// Float32 fast path for Transformer-VQ attention, block by block: each query computes its S code
// logits once (q·c_j) and reuses them for the cache rows and for every raw key (which is a code),
// so a token costs O((S + 2L)·d) whatever T is.
import type { FloatArray } from '../common.js';
import {
  beginBackward,
  beginForward,
  checkFiniteArrays,
  checkOptions,
  checkOut,
} from '../validate.js';
import type { VqGradients } from './reference.js';
import {
  createVqState,
  nearestCode,
  type ResolvedVqConfig,
  type VqConfig,
  type VqSeq,
  type VqState,
  vqSpec,
} from './state.js';

/** Working buffers for one call: raw tokens of the stream window, per-code cache, code logits. */
type Work = {
  codes: Int32Array; // code of stream token (index relative to `origin`)
  values: Float32Array;
  origin: number; // stream position of codes[0]
  counts: Float32Array;
  sums: Float32Array;
  logNext: number; // first stream position not yet moved into the cache
};

function startWork(state: VqState, seq: VqSeq): Work {
  const { seqLen: T, valueDim: dv } = seq;
  const n = state.recentLength + T;
  const codes = new Int32Array(n);
  const values = new Float32Array(n * dv);
  codes.set(state.recentCodes);
  values.set(state.recentValues);
  values.set(seq.v, state.recentLength * dv);
  return {
    codes,
    values,
    origin: state.position - state.recentLength,
    counts: Float32Array.from(state.counts),
    sums: Float32Array.from(state.valueSums),
    logNext: state.position - state.recentLength,
  };
}

/** Moves raw tokens before stream position `cacheEnd` into the per-code cache; calls `onEnter`. */
function fillCache(
  w: Work,
  cacheEnd: number,
  dv: number,
  onEnter: ((r: number) => void) | null,
): void {
  for (; w.logNext < cacheEnd; w.logNext++) {
    const r = w.logNext - w.origin;
    const z = w.codes[r];
    w.counts[z] += 1;
    for (let j = 0; j < dv; j++) w.sums[z * dv + j] += w.values[r * dv + j];
    if (onEnter) onEnter(r);
  }
}

/** Softmax weights of one query over cache rows (pCode) and raw tokens r ∈ [r0, r1] (pTok); returns y. */
function readQuery(
  q: Float32Array,
  qo: number,
  cb: Float32Array,
  c: ResolvedVqConfig,
  dk: number,
  dv: number,
  w: Work,
  r0: number,
  r1: number,
  qc: Float32Array,
  pCode: Float32Array,
  pTok: Float32Array,
  y: Float32Array,
  yo: number,
): void {
  const S = c.codebookSize;
  let max = Number.NEGATIVE_INFINITY;
  for (let s = 0; s < S; s++) {
    let d = 0;
    for (let i = 0, co = s * dk; i < dk; i++) d += q[qo + i] * cb[co + i];
    qc[s] = c.beta * d;
    if (w.counts[s] > 0) max = Math.max(max, qc[s] + Math.log(w.counts[s]));
  }
  for (let r = r0; r <= r1; r++) max = Math.max(max, qc[w.codes[r]]);
  let sum = 0;
  for (let s = 0; s < S; s++)
    sum += pCode[s] = w.counts[s] > 0 ? Math.exp(qc[s] - max) * w.counts[s] : 0;
  for (let r = r0; r <= r1; r++) sum += pTok[r - r0] = Math.exp(qc[w.codes[r]] - max);
  const inv = 1 / sum;
  for (let j = 0; j < dv; j++) y[yo + j] = 0;
  for (let s = 0; s < S; s++) {
    if (pCode[s] === 0) continue;
    const a = (pCode[s] *= inv) / w.counts[s];
    for (let j = 0; j < dv; j++) y[yo + j] += a * w.sums[s * dv + j];
  }
  for (let r = r0; r <= r1; r++) {
    const a = (pTok[r - r0] *= inv);
    for (let j = 0; j < dv; j++) y[yo + j] += a * w.values[r * dv + j];
  }
}

function quantizeAll(
  seq: VqSeq,
  cb: Float32Array,
  S: number,
  codes: Int32Array,
  offset: number,
): void {
  const k = Float32Array.from(seq.k);
  for (let t = 0; t < seq.seqLen; t++)
    codes[offset + t] = nearestCode(k, t * seq.keyDim, cb, S, seq.keyDim);
}

/** Same function as `vqAttention`, block-wise in Float32; `out` (if given) receives the output. */
export function vqAttentionBlocked(
  seq: VqSeq,
  config: VqConfig | undefined,
  options: { state?: VqState; out?: Float32Array } = {},
): { output: Float32Array; state: VqState } {
  const opts = checkOptions(options);
  const { base, config: c } = beginForward(vqSpec, seq, config, opts.state, 'options.state', true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const out = checkOut(opts.out, T * dv);
  const L = c.blockLength;
  const cb = Float32Array.from(seq.codebook);
  const q = Float32Array.from(seq.q);
  const w = startWork(base, seq);
  quantizeAll(seq, cb, c.codebookSize, w.codes, base.recentLength);
  const qc = new Float32Array(c.codebookSize);
  const pCode = new Float32Array(c.codebookSize);
  const pTok = new Float32Array(2 * L);
  for (let t = 0; t < T; t++) {
    const p = base.position + t;
    fillCache(w, Math.max(0, (Math.floor(p / L) - 1) * L), dv, null);
    readQuery(
      q,
      t * dk,
      cb,
      c,
      dk,
      dv,
      w,
      w.logNext - w.origin,
      p - w.origin,
      qc,
      pCode,
      pTok,
      out,
      t * dv,
    );
  }
  const end = base.position + T;
  const keepFrom = end === 0 ? 0 : Math.max(0, (Math.floor((end - 1) / L) - 1) * L);
  fillCache(w, keepFrom, dv, null);
  const r0 = keepFrom - w.origin;
  checkFiniteArrays('seq', { output: out, 'state.valueSums': w.sums }, 'Float32');
  return {
    output: out,
    state: {
      ...base,
      position: end,
      counts: Float64Array.from(w.counts),
      valueSums: Float64Array.from(w.sums),
      recentLength: end - keepFrom,
      recentCodes: Float64Array.from(w.codes.subarray(r0)),
      recentValues: Float64Array.from(w.values.subarray(r0 * dv)),
    },
  };
}

/**
 * Float32 gradients from an empty state (same definition as `vqAttentionBackward`) in one forward
 * sweep: a cached value's gradient Σ_{later queries} p_j/n_j·dy is read as the difference of a
 * running per-code prefix P_j between the end and the moment the token entered the cache.
 */
export function vqAttentionBlockedBackward(
  seq: VqSeq,
  config: VqConfig,
  dOutput: FloatArray,
): VqGradients<Float32Array> {
  const c = beginBackward(vqSpec, seq, config, dOutput, true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const { codebookSize: S, blockLength: L, beta } = c;
  const cb = Float32Array.from(seq.codebook);
  const q = Float32Array.from(seq.q);
  const dy = Float32Array.from(dOutput);
  const w = startWork(createVqState(seq, c), seq);
  quantizeAll(seq, cb, S, w.codes, 0);
  const g: VqGradients<Float32Array> = {
    dq: new Float32Array(T * dk),
    dk: new Float32Array(T * dk),
    dv: new Float32Array(T * dv),
    dCodebook: new Float32Array(S * dk),
  };
  const prefix = new Float32Array(S * dv); // P_j = Σ_{queries so far} p_j/n_j · dy
  // With cacheKeyGradient: K_j = Σ_{queries so far} ds_j/n_j · q, handed out as P_j is.
  const cacheKeys = config.cacheKeyGradient === true;
  const prefixKey = new Float32Array(cacheKeys ? S * dk : 0);
  const qc = new Float32Array(S);
  const pCode = new Float32Array(S);
  const pTok = new Float32Array(2 * L);
  const coef = new Float32Array(S); // Σ of β·ds over all logits that used code j, for dq
  const y = new Float32Array(dv);
  const onEnter = (r: number) => {
    const z = w.codes[r];
    for (let j = 0; j < dv; j++) g.dv[r * dv + j] -= prefix[z * dv + j];
    if (cacheKeys) for (let i = 0; i < dk; i++) g.dk[r * dk + i] -= prefixKey[z * dk + i];
  };
  for (let t = 0; t < T; t++) {
    fillCache(w, Math.max(0, (Math.floor(t / L) - 1) * L), dv, onEnter);
    const r0 = w.logNext;
    readQuery(q, t * dk, cb, c, dk, dv, w, r0, t, qc, pCode, pTok, y, 0);
    const yo = t * dv;
    let D = 0;
    for (let j = 0; j < dv; j++) D += dy[yo + j] * y[j];
    coef.fill(0);
    for (let s = 0; s < S; s++) {
      if (pCode[s] === 0) continue;
      const inv = 1 / w.counts[s];
      let dp = 0;
      for (let j = 0; j < dv; j++) {
        dp += dy[yo + j] * w.sums[s * dv + j] * inv;
        prefix[s * dv + j] += pCode[s] * inv * dy[yo + j];
      }
      const ds = beta * pCode[s] * (dp - D);
      coef[s] += ds;
      for (let i = 0; i < dk; i++) g.dCodebook[s * dk + i] += ds * q[t * dk + i];
      if (cacheKeys) for (let i = 0; i < dk; i++) prefixKey[s * dk + i] += ds * inv * q[t * dk + i];
    }
    for (let r = r0; r <= t; r++) {
      const p = pTok[r - r0];
      let dp = 0;
      for (let j = 0; j < dv; j++) {
        dp += dy[yo + j] * w.values[r * dv + j];
        g.dv[r * dv + j] += p * dy[yo + j];
      }
      const ds = beta * p * (dp - D);
      coef[w.codes[r]] += ds;
      for (let i = 0; i < dk; i++) g.dk[r * dk + i] += ds * q[t * dk + i];
    }
    for (let s = 0; s < S; s++) {
      const a = coef[s];
      if (a === 0) continue;
      for (let i = 0; i < dk; i++) g.dq[t * dk + i] += a * cb[s * dk + i];
    }
  }
  for (let r = 0; r < w.logNext; r++) {
    const z = w.codes[r];
    for (let j = 0; j < dv; j++) g.dv[r * dv + j] += prefix[z * dv + j];
    if (cacheKeys) for (let i = 0; i < dk; i++) g.dk[r * dk + i] += prefixKey[z * dk + i];
  }
  checkFiniteArrays('seq', g, 'Float32');
  return g;
}
