// Gated DeltaNet (Yang et al. 2025): config, state (S ∈ R^{dk×dv}), serialisation, size.
import {
  type Dims,
  type FloatArray,
  parseStateEnvelope,
  readNumbers,
  type SeqInput,
  serializeFields,
} from '../common.js';
import { checkInteger, checkPerToken, checkPositive, checkSeq } from '../validate.js';

/** A sequence plus the per-token gate α_t ∈ (0, 1] and writing strength β_t ∈ [0, 2]. */
export type GdnSeq = SeqInput & { alpha: FloatArray; beta: FloatArray };

export type GatedDeltaNetConfig = {
  /** Output scale applied to the normalised query; default 1/√keyDim. */
  scale?: number;
};

export type ResolvedGatedDeltaNetConfig = { scale: number };

export type GatedDeltaNetState = {
  mixer: 'gated-deltanet';
  keyDim: number;
  valueDim: number;
  config: ResolvedGatedDeltaNetConfig;
  position: number;
  /** S, row-major [keyDim, valueDim]; y_t = scale·S_tᵀ q̂_t. */
  kv: Float64Array;
};

export function resolveGatedDeltaNetConfig(
  config: GatedDeltaNetConfig | undefined,
  keyDim: number,
): ResolvedGatedDeltaNetConfig {
  return {
    scale:
      config?.scale === undefined
        ? 1 / Math.sqrt(keyDim)
        : checkPositive('config.scale', config.scale),
  };
}

export function checkGdnSeq(seq: GdnSeq, dims?: Dims): void {
  checkSeq(seq, dims);
  checkPerToken('alpha', seq.alpha, seq.seqLen, 0, 1, true, false);
  // β ∈ [0, 2] keeps I − β k̂k̂ᵀ a contraction for unit keys.
  checkPerToken('beta', seq.beta, seq.seqLen, 0, 2, false, false);
}

export function createGatedDeltaNetState(
  dims: Dims,
  config?: GatedDeltaNetConfig,
): GatedDeltaNetState {
  const keyDim = checkInteger('dims.keyDim', dims.keyDim, 1);
  const valueDim = checkInteger('dims.valueDim', dims.valueDim, 1);
  return {
    mixer: 'gated-deltanet',
    keyDim,
    valueDim,
    config: resolveGatedDeltaNetConfig(config, keyDim),
    position: 0,
    kv: new Float64Array(keyDim * valueDim),
  };
}

/** dk·dv, independent of T (ALGORITHM.md §6). */
export function gatedDeltaNetStateSize(
  dims: Dims,
  _config: GatedDeltaNetConfig | undefined,
  _T: number,
): number {
  return dims.keyDim * dims.valueDim;
}

export function serializeGatedDeltaNetState(state: GatedDeltaNetState): string {
  const { keyDim, valueDim, config, position, kv } = state;
  return serializeFields('gated-deltanet', { keyDim, valueDim, config, position, kv });
}

export function deserializeGatedDeltaNetState(text: string): GatedDeltaNetState {
  const b = parseStateEnvelope(text, 'gated-deltanet');
  const keyDim = checkInteger('state.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('state.valueDim', b.valueDim, 1);
  return {
    mixer: 'gated-deltanet',
    keyDim,
    valueDim,
    config: resolveGatedDeltaNetConfig(b.config as GatedDeltaNetConfig, keyDim),
    position: checkInteger('state.position', b.position, 0),
    kv: readNumbers(b, 'kv', keyDim * valueDim),
  };
}
