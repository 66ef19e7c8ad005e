// Truncated backprop through time: the gradient of a loss with respect to an OVQ state's
// continuous parts, its shapes, and the checks on a caller's `dFinalState`. Counts, sizes and the
// pending count are discrete (like every absorb decision) and carry no gradient.
import { spawnCount } from '../ovq/growth.js';
import type { OvqState } from '../ovq/state.js';
import type { ResolvedOvqConfig } from '../ovq/types.js';
import { OvqInputError, requireFiniteArray } from '../validate.js';

/**
 * ∂L/∂(a state's continuous parts), shaped like the state:
 * - `keys` [size, keyDim] and `values` [size, valueDim]: the centroid keys D_k and value means D_v;
 * - `pendingKeys` [pendingCount, keyDim] and `pendingValues` [pendingCount, valueDim]: the pending
 *   buffer. Pending keys are stored AFTER normalisation (k̂ with `normalize: true`), so this is the
 *   gradient w.r.t. the stored k̂; the backward that produced the state applies the
 *   normalisation's chain rule when this is fed to it as `dFinalState`.
 */
export type OvqStateGradient<A extends Float32Array | Float64Array = Float32Array | Float64Array> =
  {
    keys: A;
    values: A;
    pendingKeys: A;
    pendingValues: A;
  };

/** A caller's `dFinalState`: any part may be left out (zero); given parts must match the shape. */
export type OvqStateGradientInput = {
  keys?: ArrayLike<number>;
  values?: ArrayLike<number>;
  pendingKeys?: ArrayLike<number>;
  pendingValues?: ArrayLike<number>;
};

/** The continuous shape of a state: active rows and pending tokens. */
export type StateShape = { size: number; pendingCount: number; keyDim: number; valueDim: number };

/** Options shared by both backward functions for truncated backprop through time. */
export type TbpttOptions = {
  /** The state the forward pass continued from (not modified); default: an empty dictionary. */
  initialState?: OvqState;
  /** ∂L/∂(final state) from whatever used the state after this call (e.g. the next segment). */
  dFinalState?: OvqStateGradientInput;
};

/** The shape of `state` (empty when undefined). */
export function shapeOf(state: OvqState | undefined, keyDim: number, valueDim: number): StateShape {
  return {
    size: state ? state.size : 0,
    pendingCount: state ? state.pendingCount : 0,
    keyDim,
    valueDim,
  };
}

/**
 * With novelty spawn (`spawnDistance`) the final size depends on the data, so a gradient with
 * respect to the final state cannot be checked (or meant) before the forward runs: refused.
 */
export function refuseDataDependentShape(config: ResolvedOvqConfig, dFinalState: unknown): void {
  if (dFinalState !== undefined && config.spawnDistance !== undefined) {
    throw new OvqInputError(
      'options.dFinalState',
      `is not supported with config.spawnDistance ${config.spawnDistance} (the final dictionary size depends on the data); omit one of them`,
    );
  }
}

/**
 * The shape of the state after `T` more tokens. Sizes follow the growth schedule alone (not the
 * data), so replaying spawnCount over the absorbs gives it exactly, before any work is done.
 */
export function finalShape(
  config: ResolvedOvqConfig,
  T: number,
  initial: OvqState | undefined,
  keyDim: number,
  valueDim: number,
): StateShape {
  const C = config.chunkSize;
  let n = initial ? initial.size : 0;
  let seen = initial ? initial.tokensSeen : 0;
  let pending = initial ? initial.pendingCount : 0;
  for (let left = T; left > 0; ) {
    const take = Math.min(C - pending, left);
    left -= take;
    seen += take;
    pending += take;
    if (pending === C) {
      n += spawnCount(config.growth, config.capacity, seen, n, C);
      pending = 0;
    }
  }
  return { size: n, pendingCount: pending, keyDim, valueDim };
}

const PARTS = ['keys', 'values', 'pendingKeys', 'pendingValues'] as const;

/** Validated `dFinalState` parts (null = not given, i.e. zero). */
export type CheckedStateGradient = Record<(typeof PARTS)[number], ArrayLike<number> | null>;

/** Checks a caller's `dFinalState` against the final state's shape. */
export function checkStateGradient(
  argument: string,
  value: unknown,
  shape: StateShape,
): CheckedStateGradient {
  const none = { keys: null, values: null, pendingKeys: null, pendingValues: null };
  if (value === undefined) return none;
  if (typeof value !== 'object' || value === null) {
    throw new OvqInputError(
      argument,
      `got ${String(value)}; expected {keys, values, pendingKeys, pendingValues} (each optional)`,
    );
  }
  for (const key of Object.keys(value)) {
    if (!(PARTS as readonly string[]).includes(key)) {
      throw new OvqInputError(
        `${argument}.${key}`,
        `is not a part of a state gradient; expected one of ${PARTS.join(', ')}`,
      );
    }
  }
  const { size, pendingCount, keyDim, valueDim } = shape;
  const expected = {
    keys: [size * keyDim, `final size ${size} × keyDim ${keyDim}`],
    values: [size * valueDim, `final size ${size} × valueDim ${valueDim}`],
    pendingKeys: [pendingCount * keyDim, `final pendingCount ${pendingCount} × keyDim ${keyDim}`],
    pendingValues: [
      pendingCount * valueDim,
      `final pendingCount ${pendingCount} × valueDim ${valueDim}`,
    ],
  } as const;
  const out: CheckedStateGradient = { ...none };
  const given = value as Record<string, unknown>;
  for (const part of PARTS) {
    if (given[part] === undefined) continue;
    const [length, shapeText] = expected[part];
    out[part] = requireFiniteArray(`${argument}.${part}`, given[part], length, shapeText);
  }
  return out;
}
