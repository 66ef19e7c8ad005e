// Float32 fast path: tiled causal attention with an online softmax (flash-attention style, no T×T
// matrix). Where @ovq/core runs its WASM SIMD kernels, the blocks run on its matmul (blocked.ts);
// with the JS kernels (`setOvqKernels('js')`, OVQ_KERNELS=js, or no WASM SIMD) the JS register
// tiles of kernel.ts run instead. A small sliding window (≤ BAND_MAX_WINDOW) runs as a band
// (banded.ts) on @ovq/core's matmul with either kernel set: only the scores inside the window.
import { ovqKernels } from '@ovq/core/kernels';
import type { FloatArray, SeqInput } from '../common.js';
import {
  beginBackward,
  beginForward,
  checkFiniteArrays,
  checkOptions,
  checkOut,
} from '../validate.js';
import { BAND_MAX_WINDOW, bandedBackward, bandedForward } from './banded.js';
import { blockedBackward, blockedForward } from './blocked.js';
import { SOFTMAX_TILE, tiledBackward, tiledForward } from './kernel.js';
import { finishQKGradients } from './reference.js';
import {
  nextSoftmaxState,
  prepareQK,
  type ResolvedSoftmaxConfig,
  type SoftmaxConfig,
  type SoftmaxState,
  softmaxSpec,
} from './state.js';

export { SOFTMAX_TILE };

/** Whether window W takes the band loops. */
const banded = (W: number) => W <= BAND_MAX_WINDOW;

/** The forward and backward loops for the kernels in use now (square blocks). */
function loops() {
  return ovqKernels() === 'wasm'
    ? { forward: blockedForward, backward: blockedBackward }
    : { forward: tiledForward, backward: tiledBackward };
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
  const opts = checkOptions(options);
  const { base: state } = beginForward(softmaxSpec, seq, config, opts.state, 'options.state', true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const out = checkOut(opts.out, T * dv);
  const c = state.config;
  const { qp, kp } = processed(seq, c, state.position);
  const n0 = state.length;
  const keys = new Float32Array((n0 + T) * dk);
  keys.set(state.keys);
  keys.set(kp.processed, n0 * dk);
  const values = new Float32Array((n0 + T) * dv);
  values.set(state.values);
  values.set(seq.v, n0 * dv);
  (banded(c.window ?? Number.POSITIVE_INFINITY) ? bandedForward : loops().forward)(
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
  checkFiniteArrays('seq.q, seq.k', { output: out }, 'Float32');
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
  const c = beginBackward(softmaxSpec, seq, config, dOutput, true);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const { qp, kp } = processed(seq, c, 0);
  const q = qp.processed;
  const k = kp.processed;
  const v = Float32Array.from(seq.v);
  const dy = Float32Array.from(dOutput);
  const W = c.window ?? Number.POSITIVE_INFINITY;
  const gq = new Float32Array(T * dk);
  const gk = new Float32Array(T * dk);
  const gv = new Float32Array(T * dv);
  if (banded(W)) bandedBackward(q, k, v, dy, T, dk, dv, c.beta, W, gq, gk, gv);
  else squareBackward(q, k, v, dy, T, dk, dv, c.beta, W, gq, gk, gv);
  finishQKGradients(c, qp, kp, gq, gk, T, dk);
  checkFiniteArrays('seq.q, seq.k', { dq: gq, dk: gk, dv: gv }, 'Float32');
  return { dq: gq, dk: gk, dv: gv };
}

/** The square-block backward: a forward for the row log-sum-exp and D_t, then the tiles. */
function squareBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dy: Float32Array,
  T: number,
  dk: number,
  dv: number,
  beta: number,
  W: number,
  gq: Float32Array,
  gk: Float32Array,
  gv: Float32Array,
): void {
  const y = new Float32Array(T * dv);
  const lse = new Float32Array(T);
  const { forward, backward } = loops();
  forward(q, k, v, T, 0, dk, dv, beta, W, y, lse);
  const rowDot = new Float32Array(T); // D_t = dy_t · y_t, the softmax-Jacobian correction
  for (let t = 0; t < T; t++) {
    let d = 0;
    for (let y0 = 0; y0 < dv; y0++) d += dy[t * dv + y0] * y[t * dv + y0];
    rowDot[t] = d;
  }
  backward(q, k, v, dy, lse, rowDot, T, dk, dv, beta, W, gq, gk, gv);
}
