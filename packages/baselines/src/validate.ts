// Input checks shared by every entry point, in @ovq/core's style: each error names the argument
// (`seq.q`, `config.window`, `T`), the value received and what was expected.
import type { OvqInputError } from '@ovq/core';
import type { FloatArray } from './common.js';

/** Largest finite Float32; the fast paths refuse inputs beyond it (they would become ±Infinity). */
export const FLOAT32_MAX = 3.4028234663852886e38;

/** A short, readable rendering of a received value (typed arrays by kind and length). */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name}(${(value as unknown as ArrayLike<unknown>).length ?? '?'})`;
  }
  if (Array.isArray(value)) return `an Array(${value.length})`;
  if (typeof value === 'object' && value !== null) {
    try {
      const s = JSON.stringify(value);
      return s.length > 80 ? `${s.slice(0, 77)}…` : s;
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/**
 * Thrown for any invalid argument of an @ovq/baselines function. Same shape as @ovq/core's
 * `OvqInputError` (`name`, `argument`, message `"<argument>: got …; expected …"`), plus the
 * offending `value` and the `expected` text; the compiler checks the shared part against core's
 * type, with no runtime dependency on core.
 */
export class BaselineInputError
  extends Error
  implements Pick<OvqInputError, 'name' | 'argument' | 'message'>
{
  readonly argument: string;
  readonly value: unknown;
  readonly expected: string;
  constructor(argument: string, value: unknown, expected: string, got?: string) {
    super(`${argument}: ${got ?? `got ${describe(value)}`}; expected ${expected}`);
    this.name = 'BaselineInputError';
    this.argument = argument;
    this.value = value;
    this.expected = expected;
  }
}

/** Throws a BaselineInputError; `got` replaces the default "got <value>" part of the message. */
export function fail(argument: string, value: unknown, expected: string, got?: string): never {
  throw new BaselineInputError(argument, value, expected, got);
}

export function checkInteger(argument: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    fail(argument, value, min === 0 ? 'a non-negative integer' : `an integer ≥ ${min}`);
  }
  if (value > Number.MAX_SAFE_INTEGER) fail(argument, value, 'an integer ≤ 2^53 − 1');
  return value;
}

/** Largest typed-array length any state or output here is allocated with. */
export const MAX_LENGTH = 2 ** 31 - 1;

/** A product of sizes that becomes one array's length (keyDim·valueDim, codebookSize·valueDim…). */
export function checkLength(argument: string, value: number, expr: string): void {
  if (value > MAX_LENGTH) {
    fail(
      argument,
      value,
      `${expr} ≤ 2^31 − 1 (one array holds that many numbers)`,
      `gives ${expr} = ${value}`,
    );
  }
}

export function checkPositive(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(argument, value, 'a finite number > 0');
  }
  return value;
}

export function checkBoolean(argument: string, value: unknown): boolean {
  if (typeof value !== 'boolean') fail(argument, value, 'true or false');
  return value;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x) && !ArrayBuffer.isView(x);
}

/** Checks that `value` is a plain object (not null, an array or a typed array). */
export function checkObject(
  argument: string,
  value: unknown,
  expected: string,
): Record<string, unknown> {
  if (!isPlainObject(value)) fail(argument, value, expected);
  return value;
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = row[j];
      row[j] = next;
    }
  }
  return row[b.length];
}

/** The allowed key closest to `key`, if it is close enough to be a likely typo. */
export function didYouMean(key: string, allowed: readonly string[]): string | null {
  let best: string | null = null;
  let bestD = Number.POSITIVE_INFINITY;
  for (const a of allowed) {
    const d = a.toLowerCase() === key.toLowerCase() ? 0 : distance(key, a);
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best !== null && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : null;
}

/** Refuses keys outside `allowed`: "unknown config key 'widow' (did you mean 'window'?)". */
export function checkKeys(
  argument: string,
  value: Record<string, unknown>,
  allowed: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const hint = didYouMean(key, allowed);
    const kind = argument === 'config' ? 'config key' : `key of ${argument}`;
    fail(
      `${argument}.${key}`,
      value[key],
      allowed.length === 0 ? 'no keys' : `one of ${allowed.join(', ')}`,
      `unknown ${kind} '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}`,
    );
  }
}

/**
 * A config object checked for type and unknown keys; `undefined` gives `{}` (all defaults) unless
 * the config is required. Values are checked by the caller.
 */
export function readConfig(
  argument: string,
  config: unknown,
  allowed: readonly string[],
  required = false,
): Record<string, unknown> {
  const shape = `{${allowed.join(', ')}}`;
  if (config === undefined && !required) return {};
  const c = checkObject(
    argument,
    config,
    required ? `an object ${shape}` : `an object ${shape} or undefined`,
  );
  checkKeys(argument, c, allowed);
  return c;
}

/** Dims `{keyDim, valueDim}` (a whole sequence is fine too: other keys are not looked at). */
export function checkDims(dims: unknown, argument = 'dims'): { keyDim: number; valueDim: number } {
  const d = checkObject(argument, dims, 'an object {keyDim, valueDim}');
  const keyDim = checkInteger(`${argument}.keyDim`, d.keyDim, 1);
  const valueDim = checkInteger(`${argument}.valueDim`, d.valueDim, 1);
  checkLength(argument, keyDim * valueDim, 'keyDim·valueDim');
  return { keyDim, valueDim };
}

/** A token count T (stateSize). */
export function checkTokens(T: unknown): number {
  return checkInteger('T', T, 0);
}

function isFloatArray(x: unknown): x is FloatArray {
  return x instanceof Float32Array || x instanceof Float64Array;
}

/**
 * Checks type, length and finiteness of a row-major array; with `float32` also that every value
 * fits a Float32 (the fast paths compute in Float32).
 */
export function checkArray(
  argument: string,
  x: unknown,
  length: number,
  lengthExpr: string,
  float32 = false,
): FloatArray {
  if (!isFloatArray(x)) fail(argument, x, 'a Float32Array or Float64Array');
  if (x.length !== length) {
    fail(argument, x, `${lengthExpr} = ${length}`, `has ${x.length} values`);
  }
  const limit = float32 ? FLOAT32_MAX : Number.MAX_VALUE;
  for (let i = 0; i < x.length; i++) {
    const a = x[i];
    if (!(a >= -limit && a <= limit)) {
      fail(
        argument,
        a,
        Number.isFinite(a)
          ? `values within the Float32 range (|x| ≤ 3.4e38) in this Float32 fast path; use the float64 reference`
          : 'finite numbers',
        `value at index ${i} is ${a}`,
      );
    }
  }
  return x;
}

/** The one-head sequence shape every mixer takes (mirrors `Seq` from @ovq/core). */
export type SeqShape = { seqLen: number; keyDim: number; valueDim: number };

/** Validates `seq` (an object with seqLen, keyDim, valueDim, q, k, v), against a state's dims if given. */
export function checkSeq(
  seq: unknown,
  dims?: { keyDim: number; valueDim: number },
  float32 = false,
): asserts seq is SeqShape & { q: FloatArray; k: FloatArray; v: FloatArray } {
  const s = checkObject('seq', seq, 'an object {q, k, v, seqLen, keyDim, valueDim}');
  const seqLen = checkInteger('seq.seqLen', s.seqLen, 0);
  const keyDim = checkInteger('seq.keyDim', s.keyDim, 1);
  const valueDim = checkInteger('seq.valueDim', s.valueDim, 1);
  checkLength('seq', keyDim * valueDim, 'keyDim·valueDim');
  if (dims && dims.keyDim !== keyDim) {
    fail('seq.keyDim', keyDim, `the state's keyDim ${dims.keyDim}`);
  }
  if (dims && dims.valueDim !== valueDim) {
    fail('seq.valueDim', valueDim, `the state's valueDim ${dims.valueDim}`);
  }
  checkArray('seq.q', s.q, seqLen * keyDim, 'seqLen*keyDim', float32);
  checkArray('seq.k', s.k, seqLen * keyDim, 'seqLen*keyDim', float32);
  checkArray('seq.v', s.v, seqLen * valueDim, 'seqLen*valueDim', float32);
}

/** A per-token scalar input (decay, gate) with every value inside [lo, hi] (open ends optional). */
export function checkPerToken(
  argument: string,
  x: unknown,
  seqLen: number,
  lo: number,
  hi: number,
  openLo: boolean,
  openHi: boolean,
): FloatArray {
  const arr = checkArray(argument, x, seqLen, 'seqLen');
  for (let i = 0; i < arr.length; i++) {
    const a = arr[i];
    if ((openLo ? a <= lo : a < lo) || (openHi ? a >= hi : a > hi)) {
      const range = `${openLo ? '(' : '['}${lo}, ${hi}${openHi ? ')' : ']'}`;
      fail(argument, a, `values in ${range}`, `value at index ${i} is ${a}`);
    }
  }
  return arr;
}

export function checkDOutput(
  dOutput: unknown,
  seqLen: number,
  valueDim: number,
  float32 = false,
): FloatArray {
  return checkArray('dOutput', dOutput, seqLen * valueDim, 'seqLen*valueDim', float32);
}

/** The options of a fast path: `{ state?, out? }` or undefined. */
export function checkOptions(options: unknown): { state?: unknown; out?: unknown } {
  return readConfig('options', options, ['state', 'out']);
}

/** An optional caller-provided output buffer (fast paths write every element of it). */
export function checkOut(out: unknown, length: number): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (!(out instanceof Float32Array)) fail('options.out', out, 'a Float32Array');
  if (out.length !== length) {
    fail('options.out', out, `seqLen*valueDim = ${length}`, `has ${out.length} values`);
  }
  return out;
}

/** Throws unless a state's resolved config equals the one asked for (a stream cannot change config). */
export function checkSameConfig(stateConfig: unknown, config: unknown): void {
  if (JSON.stringify(stateConfig) !== JSON.stringify(config)) {
    fail(
      'config',
      config,
      `the state's config ${JSON.stringify(stateConfig)} (a stream cannot change config)`,
    );
  }
}

/**
 * Checks that `state` is a live state of `mixer`: the tag, its dims and counters, a config object,
 * and every array field a Float64Array of the length its counters imply. Returns its dims.
 */
export function checkState(
  state: unknown,
  mixer: string,
  argument: string,
  counters: readonly string[],
  arrays: (s: Record<string, number>) => Record<string, number>,
): { keyDim: number; valueDim: number } {
  const expected = `a ${mixer} state (from create…State, deserialize…State or a previous call)`;
  const s = checkObject(argument, state, expected);
  if (s.mixer !== mixer) {
    fail(argument, state, expected, `is a state of mixer ${describe(s.mixer)}`);
  }
  const n: Record<string, number> = {
    keyDim: checkInteger(`${argument}.keyDim`, s.keyDim, 1),
    valueDim: checkInteger(`${argument}.valueDim`, s.valueDim, 1),
    position: checkInteger(`${argument}.position`, s.position, 0),
  };
  for (const c of counters) n[c] = checkInteger(`${argument}.${c}`, s[c], 0);
  checkObject(`${argument}.config`, s.config, 'the resolved config object');
  for (const [field, length] of Object.entries(arrays(n))) {
    const x = s[field];
    if (!(x instanceof Float64Array) || x.length !== length) {
      fail(`${argument}.${field}`, x, `a Float64Array of ${length} values`);
    }
  }
  return { keyDim: n.keyDim, valueDim: n.valueDim };
}

/**
 * Overflow guard: finite inputs can still overflow inside a mixer (huge q·k, sums of huge values).
 * Refuses a result holding a non-finite value instead of returning it.
 */
export function checkFiniteResult(
  argument: string,
  result: ArrayLike<number>,
  what: string,
  precision: 'float64' | 'Float32',
): void {
  for (let i = 0; i < result.length; i++) {
    if (!Number.isFinite(result[i])) {
      fail(
        argument,
        result[i],
        `inputs small enough that every intermediate stays within the ${precision} range (scale them down${precision === 'Float32' ? ' or use the float64 reference' : ''})`,
        `overflowed: ${what}[${i}] is ${result[i]}`,
      );
    }
  }
}

/** What the shared entry checks need to know about one mixer. */
export type MixerSpec<S, C> = {
  mixer: string;
  /** Checks a state argument (named `argument`) of this mixer; returns its dims. */
  checkState(state: unknown, argument: string): { keyDim: number; valueDim: number };
  /** Validates a user config (unknown keys, types, ranges) and fills in the defaults. */
  resolve(config: unknown, keyDim: number): C;
  /** Checks the mixer's extra per-token inputs (decay, gates, codebook) of an already checked seq. */
  checkExtras?(seq: Record<string, unknown>, config: C, float32: boolean): void;
  /** An empty state for checked dims and a resolved config. */
  empty(dims: { keyDim: number; valueDim: number }, config: C): S;
};

/**
 * Checks for a forward call `(seq, config, state)`: the state first (so a wrong one is named as
 * such), then seq against the state's dims, then config (resolved, or compared with the state's),
 * then the mixer's extra inputs. Returns the state to start from and the resolved config.
 */
export function beginForward<S extends { config: C }, C>(
  spec: MixerSpec<S, C>,
  seq: unknown,
  config: unknown,
  state: unknown,
  stateArgument: string,
  float32: boolean,
): { base: S; config: C } {
  const dims = state === undefined ? undefined : spec.checkState(state, stateArgument);
  checkSeq(seq, dims, float32);
  let c: C;
  if (state === undefined) c = spec.resolve(config, seq.keyDim);
  else {
    c = (state as S).config;
    if (config !== undefined) checkSameConfig(c, spec.resolve(config, seq.keyDim));
  }
  spec.checkExtras?.(seq as Record<string, unknown>, c, float32);
  return { base: (state as S | undefined) ?? spec.empty(seq, c), config: c };
}

/** Checks for a backward call `(seq, config, dOutput)`; returns the resolved config. */
export function beginBackward<C>(
  spec: MixerSpec<unknown, C>,
  seq: unknown,
  config: unknown,
  dOutput: unknown,
  float32: boolean,
): C {
  checkSeq(seq, undefined, float32);
  const c = spec.resolve(config, seq.keyDim);
  spec.checkExtras?.(seq as Record<string, unknown>, c, float32);
  checkDOutput(dOutput, seq.seqLen, seq.valueDim, float32);
  return c;
}

/** Overflow guard for every array of a result (outputs, gradients, state arrays). */
export function checkFiniteArrays(
  argument: string,
  arrays: Record<string, ArrayLike<number>>,
  precision: 'float64' | 'Float32',
): void {
  for (const [what, x] of Object.entries(arrays)) checkFiniteResult(argument, x, what, precision);
}

/** Runs a deserializer: its errors also say that the problem is inside the serialized state. */
export function deserializing<S>(read: () => S): S {
  try {
    return read();
  } catch (e) {
    if (e instanceof BaselineInputError) e.message += ' (in the serialized state passed as text)';
    throw e;
  }
}

/** A state's config must be exactly what resolving it gives (a forged or edited config is refused). */
export function checkResolvedConfig(argument: string, config: unknown, resolved: unknown): void {
  if (JSON.stringify(config) !== JSON.stringify(resolved)) {
    fail(argument, config, `a complete resolved config such as ${JSON.stringify(resolved)}`);
  }
}
