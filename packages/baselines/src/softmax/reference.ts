// Float64 reference for causal softmax attention: a plain loop over time, the ground truth.
import { applyRope, type FloatArray, normalizeRowsBackward, type SeqInput } from '../common.js';
import {
  beginBackward,
  beginForward,
  checkBoolean,
  checkFiniteArrays,
  checkInteger,
  checkObject,
  checkPositive,
  fail,
} from '../validate.js';
import {
  checkSoftmaxState,
  nextSoftmaxState,
  prepareQK,
  type SoftmaxConfig,
  type SoftmaxState,
  softmaxSpec,
} from './state.js';

/** Overflow guard: a logit β·q·k beyond the float64 range would turn the softmax into NaN. */
function checkLogit(logit: number, t: number, s: number): void {
  if (!Number.isFinite(logit)) {
    fail(
      'seq.q, seq.k',
      logit,
      'finite logits β·q·k (scale q and k down, or use normalize: true)',
      `overflowed: the logit of query ${t} and key ${s} is ${logit}`,
    );
  }
}

/**
 * y_t = Σ_{s ≤ t, s > t−W} softmax_s(β q̃_t·k̃_s) v_s with q̃, k̃ optionally normalised and rotated.
 * Continues from `initialState` when given (its config must equal `config`); returns a new state.
 */
export function softmaxAttention(
  seq: SeqInput,
  config?: SoftmaxConfig,
  initialState?: SoftmaxState,
): { output: Float64Array; state: SoftmaxState } {
  const { base: state } = beginForward(
    softmaxSpec,
    seq,
    config,
    initialState,
    'initialState',
    false,
  );
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const c = state.config;
  const q = prepareQK(seq.q, T, dk, state.position, c, new Float64Array(T * dk)).processed;
  const kNew = prepareQK(seq.k, T, dk, state.position, c, new Float64Array(T * dk)).processed;
  const n0 = state.length;
  const keys = new Float64Array((n0 + T) * dk);
  keys.set(state.keys);
  keys.set(kNew, n0 * dk);
  const values = new Float64Array((n0 + T) * dv);
  values.set(state.values);
  values.set(seq.v, n0 * dv);
  const W = c.window ?? Number.POSITIVE_INFINITY;
  const output = new Float64Array(T * dv);
  const logits = new Float64Array(n0 + T);
  for (let t = 0; t < T; t++) {
    const self = n0 + t;
    const lo = Math.max(0, self - W + 1);
    let max = Number.NEGATIVE_INFINITY;
    for (let s = lo; s <= self; s++) {
      let d = 0;
      for (let i = 0; i < dk; i++) d += q[t * dk + i] * keys[s * dk + i];
      logits[s] = c.beta * d;
      checkLogit(logits[s], t, s);
      if (logits[s] > max) max = logits[s];
    }
    let sum = 0;
    for (let s = lo; s <= self; s++) sum += Math.exp(logits[s] - max);
    for (let s = lo; s <= self; s++) {
      const p = Math.exp(logits[s] - max) / sum;
      for (let j = 0; j < dv; j++) output[t * dv + j] += p * values[s * dv + j];
    }
  }
  checkFiniteArrays('seq', { output }, 'float64');
  return { output, state: nextSoftmaxState(state, kNew, seq.v, T) };
}

/** Streams `seq` into `state` (mutated only after every check passed); returns the outputs. */
export function softmaxAppend(state: SoftmaxState, seq: SeqInput): Float64Array {
  checkSoftmaxState(state, 'state');
  const { output, state: next } = softmaxAttention(seq, undefined, state);
  Object.assign(state, next);
  return output;
}

/** Exact float64 gradients of ⟨dOutput, output⟩ for a call from an empty state. */
export function softmaxAttentionBackward(
  seq: SeqInput,
  config: SoftmaxConfig | undefined,
  dOutput: FloatArray,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const c = beginBackward(softmaxSpec, seq, config, dOutput, false);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const qp = prepareQK(seq.q, T, dk, 0, c, new Float64Array(T * dk));
  const kp = prepareQK(seq.k, T, dk, 0, c, new Float64Array(T * dk));
  const q = qp.processed;
  const k = kp.processed;
  const v = seq.v;
  const W = c.window ?? Number.POSITIVE_INFINITY;
  const gq = new Float64Array(T * dk);
  const gk = new Float64Array(T * dk);
  const gv = new Float64Array(T * dv);
  const p = new Float64Array(T);
  const dp = new Float64Array(T);
  for (let t = 0; t < T; t++) {
    const lo = Math.max(0, t - W + 1);
    let max = Number.NEGATIVE_INFINITY;
    for (let s = lo; s <= t; s++) {
      let d = 0;
      for (let i = 0; i < dk; i++) d += q[t * dk + i] * k[s * dk + i];
      p[s] = c.beta * d;
      checkLogit(p[s], t, s);
      if (p[s] > max) max = p[s];
    }
    let sum = 0;
    for (let s = lo; s <= t; s++) sum += p[s] = Math.exp(p[s] - max);
    let mean = 0;
    for (let s = lo; s <= t; s++) {
      p[s] /= sum;
      let d = 0;
      for (let j = 0; j < dv; j++) d += dOutput[t * dv + j] * v[s * dv + j];
      dp[s] = d;
      mean += p[s] * d;
    }
    for (let s = lo; s <= t; s++) {
      const ds = c.beta * p[s] * (dp[s] - mean);
      for (let i = 0; i < dk; i++) {
        gq[t * dk + i] += ds * k[s * dk + i];
        gk[s * dk + i] += ds * q[t * dk + i];
      }
      for (let j = 0; j < dv; j++) gv[s * dv + j] += p[s] * dOutput[t * dv + j];
    }
  }
  finishQKGradients(c, qp, kp, gq, gk, T, dk);
  checkFiniteArrays('seq', { dq: gq, dk: gk, dv: gv }, 'float64');
  return { dq: gq, dk: gk, dv: gv };
}

/** Chains gradients w.r.t. processed q/k back through RoPE (inverse rotation) and normalisation. */
export function finishQKGradients(
  c: { normalize: boolean; rope: { base: number } | null },
  qp: { processed: FloatArray; norms: FloatArray | null },
  kp: { processed: FloatArray; norms: FloatArray | null },
  gq: FloatArray,
  gk: FloatArray,
  T: number,
  dk: number,
): void {
  // Exported (the fast path shares it), so checked like every entry point.
  checkInteger('T', T, 0);
  checkInteger('dk', dk, 1);
  const cc = checkObject('c', c, '{normalize, rope}');
  checkBoolean('c.normalize', cc.normalize);
  if (cc.rope !== null)
    checkPositive('c.rope.base', checkObject('c.rope', cc.rope, '{base} or null').base);
  for (const [name, x] of [
    ['qp', qp],
    ['kp', kp],
  ] as const) {
    const o = checkObject(name, x, '{processed, norms}');
    if (
      !(o.processed instanceof Float32Array || o.processed instanceof Float64Array) ||
      o.processed.length !== T * dk
    ) {
      fail(
        `${name}.processed`,
        o.processed,
        `a Float32Array or Float64Array of T*dk = ${T * dk} values`,
      );
    }
    if (
      (cc.normalize && !(o.norms instanceof Float32Array || o.norms instanceof Float64Array)) ||
      (cc.normalize && (o.norms as FloatArray).length !== T)
    ) {
      fail(`${name}.norms`, o.norms, `the row norms (T = ${T} values)`);
    }
  }
  for (const [name, g] of [
    ['gq', gq],
    ['gk', gk],
  ] as const) {
    if (!(g instanceof Float32Array || g instanceof Float64Array) || g.length !== T * dk) {
      fail(name, g, `a Float32Array or Float64Array of T*dk = ${T * dk} values`);
    }
  }
  if (c.rope) {
    applyRope(gq, T, dk, 0, c.rope.base, -1);
    applyRope(gk, T, dk, 0, c.rope.base, -1);
  }
  if (c.normalize) {
    // The normalised (unrotated) rows are needed: undo the rotation on a copy of the processed rows.
    const qHat = qp.processed.slice();
    const kHat = kp.processed.slice();
    if (c.rope) {
      applyRope(qHat, T, dk, 0, c.rope.base, -1);
      applyRope(kHat, T, dk, 0, c.rope.base, -1);
    }
    normalizeRowsBackward(qHat, qp.norms!, T, dk, gq);
    normalizeRowsBackward(kHat, kp.norms!, T, dk, gk);
  }
}
