// Softmax attention config, KV-cache state (streaming), serialisation and state size.
import {
  applyRope,
  type Dims,
  type FloatArray,
  normalizeRows,
  parseStateEnvelope,
  readNumbers,
  serializeFields,
} from '../common.js';
import {
  checkBoolean,
  checkDims,
  checkInteger,
  checkKeys,
  checkObject,
  checkPositive,
  checkResolvedConfig,
  checkState,
  checkTokens,
  deserializing,
  fail,
  type MixerSpec,
  readConfig,
} from '../validate.js';

export type SoftmaxConfig = {
  /** Logit scale β; default 1/√keyDim. */
  beta?: number;
  /** L2-normalise queries and keys first (as OVQ does); default false. */
  normalize?: boolean;
  /** Sliding window W: token t reads tokens t−W+1 … t; default unlimited. */
  window?: number;
  /** Rotary position embedding applied inside (interleaved pairs, angle p·base^(−2i/d)). */
  rope?: { base: number };
};

export type ResolvedSoftmaxConfig = {
  beta: number;
  normalize: boolean;
  /** null = unlimited. */
  window: number | null;
  rope: { base: number } | null;
};

/** The KV cache: processed (normalised, rotated) keys and raw values of the last min(T, W) tokens. */
export type SoftmaxState = {
  mixer: 'softmax';
  keyDim: number;
  valueDim: number;
  config: ResolvedSoftmaxConfig;
  /** Tokens seen so far (the RoPE position of the next token). */
  position: number;
  /** Rows held in keys/values. */
  length: number;
  keys: Float64Array;
  values: Float64Array;
};

/** Validates a SoftmaxConfig (types, ranges, unknown keys) and fills in the defaults. */
export function resolveSoftmaxConfig(
  config: SoftmaxConfig | undefined,
  keyDim: number,
  argument = 'config',
): ResolvedSoftmaxConfig {
  checkInteger('keyDim', keyDim, 1);
  const c = readConfig(argument, config, ['beta', 'normalize', 'window', 'rope']);
  const beta =
    c.beta === undefined ? 1 / Math.sqrt(keyDim) : checkPositive(`${argument}.beta`, c.beta);
  const normalize =
    c.normalize === undefined ? false : checkBoolean(`${argument}.normalize`, c.normalize);
  const window =
    c.window === undefined || c.window === Number.POSITIVE_INFINITY
      ? null
      : checkInteger(`${argument}.window`, c.window, 1);
  let rope: { base: number } | null = null;
  if (c.rope !== undefined && c.rope !== null) {
    const r = checkObject(`${argument}.rope`, c.rope, 'an object {base}');
    checkKeys(`${argument}.rope`, r, ['base']);
    rope = { base: checkPositive(`${argument}.rope.base`, r.base) };
    if (keyDim % 2 !== 0) {
      fail(
        `${argument}.rope`,
        c.rope,
        'an even keyDim (RoPE rotates pairs)',
        `needs an even keyDim; got keyDim ${keyDim}`,
      );
    }
  }
  return { beta, normalize, window, rope };
}

function emptySoftmaxState(
  dims: { keyDim: number; valueDim: number },
  config: ResolvedSoftmaxConfig,
): SoftmaxState {
  return {
    mixer: 'softmax',
    keyDim: dims.keyDim,
    valueDim: dims.valueDim,
    config,
    position: 0,
    length: 0,
    keys: new Float64Array(0),
    values: new Float64Array(0),
  };
}

export function createSoftmaxState(dims: Dims, config?: SoftmaxConfig): SoftmaxState {
  const d = checkDims(dims);
  return emptySoftmaxState(d, resolveSoftmaxConfig(config, d.keyDim));
}

/** Checks a softmax state argument: tag, dims, counters and the KV-cache array lengths. */
/** Resolves a config as a state stores it (window and rope null when absent). */
function resolveStoredSoftmaxConfig(
  config: unknown,
  keyDim: number,
  argument: string,
): ResolvedSoftmaxConfig {
  const raw = checkObject(argument, config, 'the resolved config object');
  return resolveSoftmaxConfig(
    {
      beta: raw.beta,
      normalize: raw.normalize,
      window: raw.window ?? undefined,
      rope: raw.rope ?? undefined,
    } as SoftmaxConfig,
    keyDim,
    argument,
  );
}

export function checkSoftmaxState(state: unknown, argument: string): Dims {
  const dims = checkState(state, 'softmax', argument, ['length'], (n) => ({
    keys: n.length * n.keyDim,
    values: n.length * n.valueDim,
  }));
  const s = state as SoftmaxState;
  const c = resolveStoredSoftmaxConfig(s.config, s.keyDim, `${argument}.config`);
  checkResolvedConfig(`${argument}.config`, s.config, c);
  const rows = c.window === null ? s.position : Math.min(s.position, c.window);
  if (s.length !== rows) fail(`${argument}.length`, s.length, `min(position, window) = ${rows}`);
  return dims;
}

export const softmaxSpec: MixerSpec<SoftmaxState, ResolvedSoftmaxConfig> = {
  mixer: 'softmax',
  checkState: checkSoftmaxState,
  resolve: (config, keyDim) => resolveSoftmaxConfig(config as SoftmaxConfig, keyDim),
  empty: emptySoftmaxState,
};

/** Numbers held after T tokens: T·(dk + dv), or min(T, W)·(dk + dv) with a window (ALGORITHM.md §6). */
export function softmaxStateSize(dims: Dims, config: SoftmaxConfig | undefined, T: number): number {
  const d = checkDims(dims);
  const c = resolveSoftmaxConfig(config, d.keyDim);
  const n = checkTokens(T);
  const rows = c.window === null ? n : Math.min(n, c.window);
  return rows * (d.keyDim + d.valueDim);
}

/** Queries/keys as the logits see them: optionally normalised, then rotated at their positions. */
export function prepareQK<A extends FloatArray>(
  x: FloatArray,
  rows: number,
  dim: number,
  firstPosition: number,
  config: ResolvedSoftmaxConfig,
  out: A,
): { processed: A; norms: A | null } {
  let norms: A | null = null;
  if (config.normalize) norms = normalizeRows(x, rows, dim, out);
  else out.set(x);
  if (config.rope) applyRope(out, rows, dim, firstPosition, config.rope.base, 1);
  return { processed: out, norms };
}

/** The state after appending processed keys/values: keeps the last min(total, W) rows. */
export function nextSoftmaxState(
  state: SoftmaxState,
  keys: FloatArray,
  values: FloatArray,
  added: number,
): SoftmaxState {
  const { keyDim: dk, valueDim: dv } = state;
  const total = state.length + added;
  const keep = state.config.window === null ? total : Math.min(total, state.config.window);
  const drop = total - keep;
  const newKeys = new Float64Array(keep * dk);
  const newValues = new Float64Array(keep * dv);
  for (let r = drop; r < total; r++) {
    const fromState = r < state.length;
    const src = fromState ? r : r - state.length;
    newKeys.set(
      (fromState ? state.keys : keys).subarray(src * dk, (src + 1) * dk),
      (r - drop) * dk,
    );
    newValues.set(
      (fromState ? state.values : values).subarray(src * dv, (src + 1) * dv),
      (r - drop) * dv,
    );
  }
  return {
    ...state,
    position: state.position + added,
    length: keep,
    keys: newKeys,
    values: newValues,
  };
}

export function serializeSoftmaxState(state: SoftmaxState): string {
  checkSoftmaxState(state, 'state');
  return serializeFields('softmax', {
    keyDim: state.keyDim,
    valueDim: state.valueDim,
    config: state.config,
    position: state.position,
    length: state.length,
    keys: state.keys,
    values: state.values,
  });
}

export function deserializeSoftmaxState(text: string): SoftmaxState {
  return deserializing(() => readSoftmaxState(text));
}

function readSoftmaxState(text: string): SoftmaxState {
  const b = parseStateEnvelope(text, 'softmax');
  const keyDim = checkInteger('text.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('text.valueDim', b.valueDim, 1);
  const config = resolveStoredSoftmaxConfig(b.config, keyDim, 'text.config');
  const position = checkInteger('text.position', b.position, 0);
  const length = checkInteger('text.length', b.length, 0);
  const rows = config.window === null ? position : Math.min(position, config.window);
  if (length !== rows) fail('text.length', length, `min(position, window) = ${rows}`);
  return {
    mixer: 'softmax',
    keyDim,
    valueDim,
    config,
    position,
    length,
    keys: readNumbers(b, 'keys', length * keyDim),
    values: readNumbers(b, 'values', length * valueDim),
  };
}
