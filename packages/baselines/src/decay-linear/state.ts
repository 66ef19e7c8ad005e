// Scalar-decay linear attention (Mamba2/SSD recurrence without its convolution): config, state, size.
import {
  type Dims,
  type FloatArray,
  parseStateEnvelope,
  readNumbers,
  type SeqInput,
  serializeFields,
} from '../common.js';
import { checkInteger, checkPerToken, checkPositive, checkSeq } from '../validate.js';

/** A sequence plus the per-token decay a_t ∈ (0, 1]. */
export type DecaySeq = SeqInput & { decay: FloatArray };

export type DecayLinearConfig = {
  /** Output scale: y_t = scale · S_tᵀ q_t; default 1. */
  scale?: number;
};

export type ResolvedDecayLinearConfig = { scale: number };

export type DecayLinearState = {
  mixer: 'decay-linear';
  keyDim: number;
  valueDim: number;
  config: ResolvedDecayLinearConfig;
  position: number;
  /** S = Σ_s (Π_{j>s} a_j) k_s v_sᵀ, row-major [keyDim, valueDim]. */
  kv: Float64Array;
};

export function resolveDecayLinearConfig(
  config: DecayLinearConfig | undefined,
): ResolvedDecayLinearConfig {
  return { scale: config?.scale === undefined ? 1 : checkPositive('config.scale', config.scale) };
}

export function checkDecaySeq(seq: DecaySeq, dims?: Dims): void {
  checkSeq(seq, dims);
  checkPerToken('decay', seq.decay, seq.seqLen, 0, 1, true, false);
}

export function createDecayLinearState(dims: Dims, config?: DecayLinearConfig): DecayLinearState {
  const keyDim = checkInteger('dims.keyDim', dims.keyDim, 1);
  const valueDim = checkInteger('dims.valueDim', dims.valueDim, 1);
  return {
    mixer: 'decay-linear',
    keyDim,
    valueDim,
    config: resolveDecayLinearConfig(config),
    position: 0,
    kv: new Float64Array(keyDim * valueDim),
  };
}

/** dk·dv, independent of T (ALGORITHM.md §6). */
export function decayLinearStateSize(
  dims: Dims,
  _config: DecayLinearConfig | undefined,
  _T: number,
): number {
  return dims.keyDim * dims.valueDim;
}

export function serializeDecayLinearState(state: DecayLinearState): string {
  const { keyDim, valueDim, config, position, kv } = state;
  return serializeFields('decay-linear', { keyDim, valueDim, config, position, kv });
}

export function deserializeDecayLinearState(text: string): DecayLinearState {
  const b = parseStateEnvelope(text, 'decay-linear');
  const keyDim = checkInteger('state.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('state.valueDim', b.valueDim, 1);
  return {
    mixer: 'decay-linear',
    keyDim,
    valueDim,
    config: resolveDecayLinearConfig(b.config as DecayLinearConfig),
    position: checkInteger('state.position', b.position, 0),
    kv: readNumbers(b, 'kv', keyDim * valueDim),
  };
}
