// Float64 reference for Gated DeltaNet: the per-token recurrence, the ground truth.
import { type FloatArray, normalizeRows, normalizeRowsBackward } from '../common.js';
import { beginBackward, beginForward, checkFiniteArrays } from '../validate.js';
import {
  checkGatedDeltaNetState,
  type GatedDeltaNetConfig,
  type GatedDeltaNetState,
  type GdnSeq,
  gatedDeltaNetSpec,
} from './state.js';
import { deltaStep, deltaStepBackward, readBackward } from './step.js';

/** S_t = α_t S_{t−1}(I − β_t k̂_t k̂_tᵀ) + β_t v_t k̂_tᵀ (value-major), y_t = scale·S_t q̂_t; q̂, k̂ unit. */
export function gatedDeltaNet(
  seq: GdnSeq,
  config?: GatedDeltaNetConfig,
  initialState?: GatedDeltaNetState,
): { output: Float64Array; state: GatedDeltaNetState } {
  const { base } = beginForward(
    gatedDeltaNetSpec,
    seq,
    config,
    initialState,
    'initialState',
    false,
  );
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const { scale } = base.config;
  const q = new Float64Array(T * dk);
  const k = new Float64Array(T * dk);
  normalizeRows(seq.q, T, dk, q);
  normalizeRows(seq.k, T, dk, k);
  const S = base.kv.slice();
  const u = new Float64Array(dv);
  const output = new Float64Array(T * dv);
  for (let t = 0; t < T; t++) {
    deltaStep(S, k, t * dk, seq.v, t * dv, seq.alpha[t], seq.beta[t], dk, dv, u);
    for (let i = 0; i < dk; i++) {
      const a = scale * q[t * dk + i];
      for (let j = 0; j < dv; j++) output[t * dv + j] += a * S[i * dv + j];
    }
  }
  checkFiniteArrays('seq', { output, 'state.kv': S }, 'float64');
  return { output, state: { ...base, position: base.position + T, kv: S } };
}

/** Streams `seq` into `state` (mutated only after every check passed); returns the outputs. */
export function gatedDeltaNetAppend(state: GatedDeltaNetState, seq: GdnSeq): Float64Array {
  checkGatedDeltaNetState(state, 'state');
  const { output, state: next } = gatedDeltaNet(seq, undefined, state);
  Object.assign(state, next);
  return output;
}

export type GatedDeltaNetGradients<A> = { dq: A; dk: A; dv: A; dAlpha: A; dBeta: A };

/** Exact float64 gradients from an empty state: reverse recurrence over stored per-token states. */
export function gatedDeltaNetBackward(
  seq: GdnSeq,
  config: GatedDeltaNetConfig | undefined,
  dOutput: FloatArray,
): GatedDeltaNetGradients<Float64Array> {
  const { scale } = beginBackward(gatedDeltaNetSpec, seq, config, dOutput, false);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const q = new Float64Array(T * dk);
  const k = new Float64Array(T * dk);
  const qNorm = normalizeRows(seq.q, T, dk, q);
  const kNorm = normalizeRows(seq.k, T, dk, k);
  const m = dk * dv;
  const states = new Float64Array((T + 1) * m); // states[t] = S before token t
  const u = new Float64Array(dv);
  for (let t = 0; t < T; t++) {
    const S = states.subarray((t + 1) * m, (t + 2) * m);
    S.set(states.subarray(t * m, (t + 1) * m));
    deltaStep(S, k, t * dk, seq.v, t * dv, seq.alpha[t], seq.beta[t], dk, dv, u);
  }
  const g: GatedDeltaNetGradients<Float64Array> = {
    dq: new Float64Array(T * dk),
    dk: new Float64Array(T * dk),
    dv: new Float64Array(T * dv),
    dAlpha: new Float64Array(T),
    dBeta: new Float64Array(T),
  };
  const G = new Float64Array(m);
  const gk = new Float64Array(dv);
  const sk = new Float64Array(dv);
  for (let t = T - 1; t >= 0; t--) {
    readBackward(
      G,
      states.subarray((t + 1) * m, (t + 2) * m),
      q,
      t * dk,
      dOutput,
      t * dv,
      scale,
      dk,
      dv,
      g.dq,
    );
    const Sprev = states.subarray(t * m, (t + 1) * m);
    const [da, db] = deltaStepBackward(
      G,
      Sprev,
      k,
      t * dk,
      seq.v,
      t * dv,
      seq.alpha[t],
      seq.beta[t],
      dk,
      dv,
      g.dk,
      g.dv,
      gk,
      sk,
    );
    g.dAlpha[t] = da;
    g.dBeta[t] = db;
  }
  normalizeRowsBackward(q, qNorm, T, dk, g.dq);
  normalizeRowsBackward(k, kNorm, T, dk, g.dk);
  checkFiniteArrays('seq', g, 'float64');
  return g;
}
