// Scalar-decay linear attention (Mamba2/SSD recurrence without its convolution): config, state, size.
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
  argument = 'config',
): ResolvedDecayLinearConfig {
  const c = readConfig(argument, config, ['scale']);
  return { scale: c.scale === undefined ? 1 : checkPositive(`${argument}.scale`, c.scale) };
}

function emptyDecayLinearState(dims: Dims, config: ResolvedDecayLinearConfig): DecayLinearState {
  const { keyDim, valueDim } = dims;
  return {
    mixer: 'decay-linear',
    keyDim,
    valueDim,
    config,
    position: 0,
    kv: new Float64Array(keyDim * valueDim),
  };
}

export function createDecayLinearState(dims: Dims, config?: DecayLinearConfig): DecayLinearState {
  return emptyDecayLinearState(checkDims(dims), resolveDecayLinearConfig(config));
}

export function checkDecayLinearState(state: unknown, argument: string): Dims {
  const dims = checkState(state, 'decay-linear', argument, [], (n) => ({
    kv: n.keyDim * n.valueDim,
  }));
  const config = (state as DecayLinearState).config;
  const resolved = resolveDecayLinearConfig(config, `${argument}.config`);
  checkResolvedConfig(`${argument}.config`, config, resolved);
  return dims;
}

export const decayLinearSpec: MixerSpec<DecayLinearState, ResolvedDecayLinearConfig> = {
  mixer: 'decay-linear',
  checkState: checkDecayLinearState,
  resolve: (config) => resolveDecayLinearConfig(config as DecayLinearConfig),
  // a_t ∈ (0, 1]: a_t = 0 would make ln a_t (the chunked form's cumulative decay) −∞.
  checkExtras: (seq) => {
    checkPerToken('seq.decay', seq.decay, seq.seqLen as number, 0, 1, true, false);
  },
  empty: emptyDecayLinearState,
};

/** dk·dv, independent of T (ALGORITHM.md §6). */
export function decayLinearStateSize(
  dims: Dims,
  config: DecayLinearConfig | undefined,
  T: number,
): number {
  const d = checkDims(dims);
  resolveDecayLinearConfig(config);
  checkTokens(T);
  return d.keyDim * d.valueDim;
}

export function serializeDecayLinearState(state: DecayLinearState): string {
  checkDecayLinearState(state, 'state');
  const { keyDim, valueDim, config, position, kv } = state;
  return serializeFields('decay-linear', { keyDim, valueDim, config, position, kv });
}

export function deserializeDecayLinearState(text: string): DecayLinearState {
  return deserializing(() => readDecayLinearState(text));
}

function readDecayLinearState(text: string): DecayLinearState {
  const b = parseStateEnvelope(text, 'decay-linear');
  const keyDim = checkInteger('text.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('text.valueDim', b.valueDim, 1);
  return {
    mixer: 'decay-linear',
    keyDim,
    valueDim,
    config: resolveDecayLinearConfig(b.config as DecayLinearConfig, 'text.config'),
    position: checkInteger('text.position', b.position, 0),
    kv: readNumbers(b, 'kv', keyDim * valueDim),
  };
}
