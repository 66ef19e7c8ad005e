// Float32 fast path: tiled causal attention with an online softmax (flash-attention style, no T×T matrix).
import type { FloatArray, SeqInput } from '../common.js';
import { checkDOutput, checkOut, checkSameConfig, checkSeq, checkState } from '../validate.js';
import { finishQKGradients } from './reference.js';
import {
  createSoftmaxState,
  nextSoftmaxState,
  prepareQK,
  type ResolvedSoftmaxConfig,
  resolveSoftmaxConfig,
  type SoftmaxConfig,
  type SoftmaxState,
} from './state.js';

/** a[ao..ao+n)·b[bo..bo+n) with four partial sums (breaks the add dependency chain; ~2× in V8). */
function dot32(a: Float32Array, ao: number, b: Float32Array, bo: number, n: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let x = 0;
  for (; x + 3 < n; x += 4) {
    s0 += a[ao + x] * b[bo + x];
    s1 += a[ao + x + 1] * b[bo + x + 1];
    s2 += a[ao + x + 2] * b[bo + x + 2];
    s3 += a[ao + x + 3] * b[bo + x + 3];
  }
  for (; x < n; x++) s0 += a[ao + x] * b[bo + x];
  return s0 + s1 + (s2 + s3);
}

/** y[yo..yo+n) += a · x[xo..xo+n). */
function axpy32(
  a: number,
  x: Float32Array,
  xo: number,
  y: Float32Array,
  yo: number,
  n: number,
): void {
  let i = 0;
  for (; i + 3 < n; i += 4) {
    y[yo + i] += a * x[xo + i];
    y[yo + i + 1] += a * x[xo + i + 1];
    y[yo + i + 2] += a * x[xo + i + 2];
    y[yo + i + 3] += a * x[xo + i + 3];
  }
  for (; i < n; i++) y[yo + i] += a * x[xo + i];
}

/** Query/key tile edge: a 64×64 score tile plus its rows stay in L1/L2. */
export const SOFTMAX_TILE = 64;

/**
 * Online-softmax forward over tiles. Query row t sits at key index n0 + t; keys [0, n0) come from
 * the cache. Writes out [T, dv] and, when given, each row's log-sum-exp (for the backward).
 */
function tiledForward(
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  T: number,
  n0: number,
  dk: number,
  dv: number,
  beta: number,
  W: number,
  out: Float32Array,
  lse: Float32Array | null,
): void {
  const B = SOFTMAX_TILE;
  const scores = new Float32Array(B);
  const acc = new Float32Array(B * dv);
  const rowMax = new Float32Array(B);
  const rowSum = new Float32Array(B);
  for (let i0 = 0; i0 < T; i0 += B) {
    const i1 = Math.min(T, i0 + B);
    acc.fill(0);
    rowMax.fill(Number.NEGATIVE_INFINITY);
    rowSum.fill(0);
    const firstKey = Math.max(0, n0 + i0 - W + 1);
    const lastKey = n0 + i1 - 1;
    for (let j0 = firstKey - (firstKey % B); j0 <= lastKey; j0 += B) {
      for (let i = i0; i < i1; i++) {
        const self = n0 + i;
        const lo = Math.max(j0, self - W + 1);
        const hi = Math.min(j0 + B - 1, self);
        if (lo > hi) continue;
        const r = i - i0;
        let m = rowMax[r];
        for (let j = lo; j <= hi; j++) {
          const s = beta * dot32(q, i * dk, keys, j * dk, dk);
          scores[j - lo] = s;
          if (s > m) m = s;
        }
        const rescale = Math.exp(rowMax[r] - m);
        const ao = r * dv;
        if (rescale !== 1) for (let y = 0; y < dv; y++) acc[ao + y] *= rescale;
        let sum = rowSum[r] * rescale;
        for (let j = lo; j <= hi; j++) {
          const p = Math.exp(scores[j - lo] - m);
          sum += p;
          axpy32(p, values, j * dv, acc, ao, dv);
        }
        rowMax[r] = m;
        rowSum[r] = sum;
      }
    }
    for (let i = i0; i < i1; i++) {
      const r = i - i0;
      const inv = 1 / rowSum[r];
      for (let y = 0; y < dv; y++) out[i * dv + y] = acc[r * dv + y] * inv;
      if (lse) lse[i] = rowMax[r] + Math.log(rowSum[r]);
    }
  }
}

function processed(seq: SeqInput, c: ResolvedSoftmaxConfig, position: number) {
  const { seqLen: T, keyDim: dk } = seq;
  return {
    qp: prepareQK(seq.q, T, dk, position, c, new Float32Array(T * dk)),
    kp: prepareQK(seq.k, T, dk, position, c, new Float32Array(T * dk)),
  };
}

/** Same function as `softmaxAttention`, in Float32 tiles; `out` (if given) receives the output. */
export function softmaxAttentionTiled(
  seq: SeqInput,
  config?: SoftmaxConfig,
  options: { state?: SoftmaxState; out?: Float32Array } = {},
): { output: Float32Array; state: SoftmaxState } {
  const initial = options.state;
  checkSeq(seq, initial);
  if (initial) checkState(initial, 'softmax');
  const state = initial ?? createSoftmaxState(seq, config);
  if (initial && config !== undefined)
    checkSameConfig(state.config, resolveSoftmaxConfig(config, seq.keyDim));
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const out = checkOut(options.out, T * dv);
  const c = state.config;
  const { qp, kp } = processed(seq, c, state.position);
  const n0 = state.length;
  const keys = new Float32Array((n0 + T) * dk);
  keys.set(state.keys);
  keys.set(kp.processed, n0 * dk);
  const values = new Float32Array((n0 + T) * dv);
  values.set(state.values);
  values.set(seq.v, n0 * dv);
  tiledForward(
    qp.processed,
    keys,
    values,
    T,
    n0,
    dk,
    dv,
    c.beta,
    c.window ?? Number.POSITIVE_INFINITY,
    out,
    null,
  );
  return { output: out, state: nextSoftmaxState(state, kp.processed, values.subarray(n0 * dv), T) };
}

/**
 * Float32 gradients (from an empty state), flash-attention style: recompute each score tile from
 * the saved row log-sum-exp instead of storing probabilities.
 */
export function softmaxAttentionTiledBackward(
  seq: SeqInput,
  config: SoftmaxConfig | undefined,
  dOutput: FloatArray,
): { dq: Float32Array; dk: Float32Array; dv: Float32Array } {
  checkSeq(seq);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  checkDOutput(dOutput, T, dv);
  const c = resolveSoftmaxConfig(config, dk);
  const { qp, kp } = processed(seq, c, 0);
  const q = qp.processed;
  const k = kp.processed;
  const v = Float32Array.from(seq.v);
  const dy = Float32Array.from(dOutput);
  const W = c.window ?? Number.POSITIVE_INFINITY;
  const y = new Float32Array(T * dv);
  const lse = new Float32Array(T);
  tiledForward(q, k, v, T, 0, dk, dv, c.beta, W, y, lse);
  const rowDot = new Float32Array(T); // D_t = dy_t · y_t, the softmax-Jacobian correction
  for (let t = 0; t < T; t++) {
    let d = 0;
    for (let y0 = 0; y0 < dv; y0++) d += dy[t * dv + y0] * y[t * dv + y0];
    rowDot[t] = d;
  }
  const gq = new Float32Array(T * dk);
  const gk = new Float32Array(T * dk);
  const gv = new Float32Array(T * dv);
  const B = SOFTMAX_TILE;
  for (let j0 = 0; j0 < T; j0 += B) {
    const j1 = Math.min(T, j0 + B);
    const lastQuery = Math.min(T - 1, j1 - 1 + W - 1);
    for (let i = j0; i <= lastQuery; i++) {
      const lo = Math.max(j0, i - W + 1);
      const hi = Math.min(j1 - 1, i);
      const qo = i * dk;
      const yo = i * dv;
      for (let j = lo; j <= hi; j++) {
        const ko = j * dk;
        const vo = j * dv;
        const p = Math.exp(c.beta * dot32(q, qo, k, ko, dk) - lse[i]);
        const dp = dot32(dy, yo, v, vo, dv);
        axpy32(p, dy, yo, gv, vo, dv);
        const ds = c.beta * p * (dp - rowDot[i]);
        axpy32(ds, k, ko, gq, qo, dk);
        axpy32(ds, q, qo, gk, ko, dk);
      }
    }
  }
  finishQKGradients(c, qp, kp, gq, gk, T, dk);
  return { dq: gq, dk: gk, dv: gv };
}
