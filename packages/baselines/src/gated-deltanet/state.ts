// Gated DeltaNet (Yang et al. 2025): config, state (S ∈ R^{dk×dv}), serialisation, size.
import {
  type Dims,
  type FloatArray,
  parseStateEnvelope,
  readNumbers,
  type SeqInput,
  serializeFields,
} from '../common.js';
import {
  checkDims,
  checkInteger,
  checkPerToken,
  checkPositive,
  checkResolvedConfig,
  checkState,
  checkTokens,
  deserializing,
  type MixerSpec,
  readConfig,
} from '../validate.js';

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
  argument = 'config',
): ResolvedGatedDeltaNetConfig {
  checkInteger('keyDim', keyDim, 1);
  const c = readConfig(argument, config, ['scale']);
  return {
    scale:
      c.scale === undefined ? 1 / Math.sqrt(keyDim) : checkPositive(`${argument}.scale`, c.scale),
  };
}

function emptyGatedDeltaNetState(
  dims: Dims,
  config: ResolvedGatedDeltaNetConfig,
): GatedDeltaNetState {
  const { keyDim, valueDim } = dims;
  return {
    mixer: 'gated-deltanet',
    keyDim,
    valueDim,
    config,
    position: 0,
    kv: new Float64Array(keyDim * valueDim),
  };
}

export function createGatedDeltaNetState(
  dims: Dims,
  config?: GatedDeltaNetConfig,
): GatedDeltaNetState {
  const d = checkDims(dims);
  return emptyGatedDeltaNetState(d, resolveGatedDeltaNetConfig(config, d.keyDim));
}

export function checkGatedDeltaNetState(state: unknown, argument: string): Dims {
  const dims = checkState(state, 'gated-deltanet', argument, [], (n) => ({
    kv: n.keyDim * n.valueDim,
  }));
  const config = (state as GatedDeltaNetState).config;
  const resolved = resolveGatedDeltaNetConfig(config, dims.keyDim, `${argument}.config`);
  checkResolvedConfig(`${argument}.config`, config, resolved);
  return dims;
}

export const gatedDeltaNetSpec: MixerSpec<GatedDeltaNetState, ResolvedGatedDeltaNetConfig> = {
  mixer: 'gated-deltanet',
  checkState: checkGatedDeltaNetState,
  resolve: (config, keyDim) => resolveGatedDeltaNetConfig(config as GatedDeltaNetConfig, keyDim),
  checkExtras: (seq) => {
    const T = seq.seqLen as number;
    checkPerToken('seq.alpha', seq.alpha, T, 0, 1, true, false);
    // β ∈ [0, 2] keeps I − β k̂k̂ᵀ a contraction for unit keys.
    checkPerToken('seq.beta', seq.beta, T, 0, 2, false, false);
  },
  empty: emptyGatedDeltaNetState,
};

/** dk·dv, independent of T (ALGORITHM.md §6). */
export function gatedDeltaNetStateSize(
  dims: Dims,
  config: GatedDeltaNetConfig | undefined,
  T: number,
): number {
  const d = checkDims(dims);
  resolveGatedDeltaNetConfig(config, d.keyDim);
  checkTokens(T);
  return d.keyDim * d.valueDim;
}

export function serializeGatedDeltaNetState(state: GatedDeltaNetState): string {
  checkGatedDeltaNetState(state, 'state');
  const { keyDim, valueDim, config, position, kv } = state;
  return serializeFields('gated-deltanet', { keyDim, valueDim, config, position, kv });
}

export function deserializeGatedDeltaNetState(text: string): GatedDeltaNetState {
  return deserializing(() => readGatedDeltaNetState(text));
}

function readGatedDeltaNetState(text: string): GatedDeltaNetState {
  const b = parseStateEnvelope(text, 'gated-deltanet');
  const keyDim = checkInteger('text.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('text.valueDim', b.valueDim, 1);
  return {
    mixer: 'gated-deltanet',
    keyDim,
    valueDim,
    config: resolveGatedDeltaNetConfig(b.config as GatedDeltaNetConfig, keyDim, 'text.config'),
    position: checkInteger('text.position', b.position, 0),
    kv: readNumbers(b, 'kv', keyDim * valueDim),
  };
}
