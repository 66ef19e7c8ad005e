// Linear attention config, recurrent state (S = Σ φ(k) vᵀ, z = Σ φ(k)), serialisation and size.
import { type Dims, parseStateEnvelope, readNumbers, serializeFields } from '../common.js';
import { checkInteger, checkPositive } from '../validate.js';

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

export function resolveLinearConfig(config: LinearConfig | undefined): ResolvedLinearConfig {
  const eps = config?.eps;
  return { eps: eps === undefined ? 1e-6 : eps === 0 ? 0 : checkPositive('config.eps', eps) };
}

export function createLinearState(dims: Dims, config?: LinearConfig): LinearState {
  const keyDim = checkInteger('dims.keyDim', dims.keyDim, 1);
  const valueDim = checkInteger('dims.valueDim', dims.valueDim, 1);
  return {
    mixer: 'linear',
    keyDim,
    valueDim,
    config: resolveLinearConfig(config),
    position: 0,
    kv: new Float64Array(keyDim * valueDim),
    kSum: new Float64Array(keyDim),
  };
}

/** dk·dv for S plus dk for the normaliser z, independent of T. */
export function linearStateSize(dims: Dims, _config: LinearConfig | undefined, _T: number): number {
  return dims.keyDim * dims.valueDim + dims.keyDim;
}

export function serializeLinearState(state: LinearState): string {
  const { keyDim, valueDim, config, position, kv, kSum } = state;
  return serializeFields('linear', { keyDim, valueDim, config, position, kv, kSum });
}

export function deserializeLinearState(text: string): LinearState {
  const b = parseStateEnvelope(text, 'linear');
  const keyDim = checkInteger('state.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('state.valueDim', b.valueDim, 1);
  return {
    mixer: 'linear',
    keyDim,
    valueDim,
    config: resolveLinearConfig(b.config as LinearConfig),
    position: checkInteger('state.position', b.position, 0),
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
