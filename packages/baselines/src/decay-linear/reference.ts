// Float64 reference for scalar-decay linear attention: S_t = a_t S_{t−1} + k_t v_tᵀ, y_t = scale·S_tᵀ q_t.
import type { FloatArray } from '../common.js';
import { beginBackward, beginForward, checkFiniteArrays } from '../validate.js';
import {
  checkDecayLinearState,
  type DecayLinearConfig,
  type DecayLinearState,
  type DecaySeq,
  decayLinearSpec,
} from './state.js';

export function decayLinearAttention(
  seq: DecaySeq,
  config?: DecayLinearConfig,
  initialState?: DecayLinearState,
): { output: Float64Array; state: DecayLinearState } {
  const { base } = beginForward(decayLinearSpec, seq, config, initialState, 'initialState', false);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const { scale } = base.config;
  const kv = base.kv.slice();
  const output = new Float64Array(T * dv);
  for (let t = 0; t < T; t++) {
    const a = seq.decay[t];
    for (let i = 0; i < dk; i++) {
      const kt = seq.k[t * dk + i];
      for (let j = 0; j < dv; j++) kv[i * dv + j] = a * kv[i * dv + j] + kt * seq.v[t * dv + j];
    }
    for (let i = 0; i < dk; i++) {
      const qt = scale * seq.q[t * dk + i];
      for (let j = 0; j < dv; j++) output[t * dv + j] += qt * kv[i * dv + j];
    }
  }
  checkFiniteArrays('seq', { output, 'state.kv': kv }, 'float64');
  return { output, state: { ...base, position: base.position + T, kv } };
}

/** Streams `seq` into `state` (mutated only after every check passed); returns the outputs. */
export function decayLinearAppend(state: DecayLinearState, seq: DecaySeq): Float64Array {
  checkDecayLinearState(state, 'state');
  const { output, state: next } = decayLinearAttention(seq, undefined, state);
  Object.assign(state, next);
  return output;
}

/**
 * Exact float64 gradients from an empty state by the reverse recurrence on G_t = ∂L/∂S_t, with every
 * S_{t−1} kept: dq_t = scale·S_t dy_t, dk_t = G_t v_t, dv_t = G_tᵀ k_t, da_t = ⟨G_t, S_{t−1}⟩.
 */
export function decayLinearAttentionBackward(
  seq: DecaySeq,
  config: DecayLinearConfig | undefined,
  dOutput: FloatArray,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array; dDecay: Float64Array } {
  const { scale } = beginBackward(decayLinearSpec, seq, config, dOutput, false);
  const { seqLen: T, keyDim: dk, valueDim: dv } = seq;
  const m = dk * dv;
  const states = new Float64Array((T + 1) * m); // states[t] = S_{t−1} in 1-based terms: S before token t
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < dk; i++) {
      for (let j = 0; j < dv; j++) {
        states[(t + 1) * m + i * dv + j] =
          seq.decay[t] * states[t * m + i * dv + j] + seq.k[t * dk + i] * seq.v[t * dv + j];
      }
    }
  }
  const gq = new Float64Array(T * dk);
  const gk = new Float64Array(T * dk);
  const gv = new Float64Array(T * dv);
  const gDecay = new Float64Array(T);
  const G = new Float64Array(m);
  for (let t = T - 1; t >= 0; t--) {
    const after = (t + 1) * m;
    const before = t * m;
    for (let i = 0; i < dk; i++) {
      let s = 0;
      for (let j = 0; j < dv; j++) {
        s += states[after + i * dv + j] * dOutput[t * dv + j];
        G[i * dv + j] += scale * seq.q[t * dk + i] * dOutput[t * dv + j];
      }
      gq[t * dk + i] = scale * s;
    }
    let da = 0;
    for (let i = 0; i < dk; i++) {
      let s = 0;
      for (let j = 0; j < dv; j++) {
        const g = G[i * dv + j];
        s += g * seq.v[t * dv + j];
        gv[t * dv + j] += g * seq.k[t * dk + i];
        da += g * states[before + i * dv + j];
      }
      gk[t * dk + i] = s;
    }
    gDecay[t] = da;
    for (let x = 0; x < m; x++) G[x] *= seq.decay[t];
  }
  checkFiniteArrays('seq', { dq: gq, dk: gk, dv: gv, dDecay: gDecay }, 'float64');
  return { dq: gq, dk: gk, dv: gv, dDecay: gDecay };
}
