// Linear attention config, recurrent state (S = Σ φ(k) vᵀ, z = Σ φ(k)), serialisation and size.
import { type Dims, parseStateEnvelope, readNumbers, serializeFields } from '../common.js';
import {
  checkDims,
  checkInteger,
  checkPositive,
  checkResolvedConfig,
  checkState,
  checkTokens,
  deserializing,
  type MixerSpec,
  readConfig,
} from '../validate.js';

export type LinearConfig = {
  /** Added to the normaliser φ(q)·z (as in Katharopoulos et al.); default 1e-6. */
  eps?: number;
};

export type ResolvedLinearConfig = { eps: number };

export type LinearState = {
  mixer: 'linear';
  keyDim: number;
  valueDim: number;
  config: ResolvedLinearConfig;
  position: number;
  /** Σ φ(k_s) v_sᵀ, row-major [keyDim, valueDim]. */
  kv: Float64Array;
  /** Σ φ(k_s), [keyDim]. */
  kSum: Float64Array;
};

/** Validates a LinearConfig; eps must be > 0 (with eps = 0 an underflowing φ(q)·z gives 0/0). */
export function resolveLinearConfig(
  config: LinearConfig | undefined,
  argument = 'config',
): ResolvedLinearConfig {
  const c = readConfig(argument, config, ['eps']);
  return { eps: c.eps === undefined ? 1e-6 : checkPositive(`${argument}.eps`, c.eps) };
}

function emptyLinearState(dims: Dims, config: ResolvedLinearConfig): LinearState {
  const { keyDim, valueDim } = dims;
  return {
    mixer: 'linear',
    keyDim,
    valueDim,
    config,
    position: 0,
    kv: new Float64Array(keyDim * valueDim),
    kSum: new Float64Array(keyDim),
  };
}

export function createLinearState(dims: Dims, config?: LinearConfig): LinearState {
  return emptyLinearState(checkDims(dims), resolveLinearConfig(config));
}

export function checkLinearState(state: unknown, argument: string): Dims {
  const dims = checkState(state, 'linear', argument, [], (n) => ({
    kv: n.keyDim * n.valueDim,
    kSum: n.keyDim,
  }));
  const config = (state as LinearState).config;
  checkResolvedConfig(
    `${argument}.config`,
    config,
    resolveLinearConfig(config, `${argument}.config`),
  );
  return dims;
}

export const linearSpec: MixerSpec<LinearState, ResolvedLinearConfig> = {
  mixer: 'linear',
  checkState: checkLinearState,
  resolve: (config) => resolveLinearConfig(config as LinearConfig),
  empty: emptyLinearState,
};

/** dk·dv for S plus dk for the normaliser z, independent of T. */
export function linearStateSize(dims: Dims, config: LinearConfig | undefined, T: number): number {
  const d = checkDims(dims);
  resolveLinearConfig(config);
  checkTokens(T);
  return d.keyDim * d.valueDim + d.keyDim;
}

export function serializeLinearState(state: LinearState): string {
  checkLinearState(state, 'state');
  const { keyDim, valueDim, config, position, kv, kSum } = state;
  return serializeFields('linear', { keyDim, valueDim, config, position, kv, kSum });
}

export function deserializeLinearState(text: string): LinearState {
  return deserializing(() => readLinearState(text));
}

function readLinearState(text: string): LinearState {
  const b = parseStateEnvelope(text, 'linear');
  const keyDim = checkInteger('text.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('text.valueDim', b.valueDim, 1);
  return {
    mixer: 'linear',
    keyDim,
    valueDim,
    config: resolveLinearConfig(b.config as LinearConfig, 'text.config'),
    position: checkInteger('text.position', b.position, 0),
    kv: readNumbers(b, 'kv', keyDim * valueDim),
    kSum: readNumbers(b, 'kSum', keyDim),
  };
}

/** φ(x) = elu(x) + 1, elementwise into a new array of the same kind as `out`. */
export function featureMap<A extends Float32Array | Float64Array>(x: ArrayLike<number>, out: A): A {
  for (let i = 0; i < out.length; i++) out[i] = x[i] > 0 ? x[i] + 1 : Math.exp(x[i]);
  return out;
}

/** In place: dφ → dx, with φ'(x) = 1 for x > 0, eˣ otherwise. */
export function featureMapBackward(x: ArrayLike<number>, grad: Float32Array | Float64Array): void {
  for (let i = 0; i < grad.length; i++) if (!(x[i] > 0)) grad[i] *= Math.exp(x[i]);
}
