// Input validation shared by every entry point. Errors name the argument, the value received and
// what was expected, so a caller can fix the call without reading the source.
import type { Growth, OvqConfig, ResolvedGrowth, ResolvedOvqConfig } from './ovq/types.js';

/** Thrown for any invalid argument; `argument` names the offending input. */
export class OvqInputError extends Error {
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(`${argument}: ${message}`);
    this.name = 'OvqInputError';
    this.argument = argument;
  }
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

export function requirePositiveInteger(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new OvqInputError(argument, `got ${describe(value)}; expected a positive integer`);
  }
  return value;
}

export function requireNonNegativeInteger(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new OvqInputError(argument, `got ${describe(value)}; expected a non-negative integer`);
  }
  return value;
}

export function requirePositiveFinite(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new OvqInputError(argument, `got ${describe(value)}; expected a finite number > 0`);
  }
  return value;
}

/** Checks `array` is a numeric array of exactly `expected` finite values. */
export function requireFiniteArray(
  argument: string,
  array: unknown,
  expected: number,
  shape: string,
): ArrayLike<number> {
  const isNumeric =
    array instanceof Float32Array || array instanceof Float64Array || Array.isArray(array);
  if (!isNumeric) {
    throw new OvqInputError(
      argument,
      `got ${typeof array}; expected a Float32Array or Float64Array`,
    );
  }
  const values = array as ArrayLike<number>;
  if (values.length !== expected) {
    throw new OvqInputError(
      argument,
      `has ${values.length} values; expected ${shape} = ${expected}`,
    );
  }
  for (let i = 0; i < values.length; i++) {
    const x = values[i];
    if (typeof x !== 'number' || !Number.isFinite(x)) {
      throw new OvqInputError(argument, `value at index ${i} is ${x}; expected finite numbers`);
    }
  }
  return values;
}

function rejectUnknownKeys(argument: string, value: object, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      throw new OvqInputError(
        `${argument}.${key}`,
        `unknown option; expected one of ${allowed.join(', ')}`,
      );
    }
  }
}

function resolveGrowth(growth: Growth | undefined): ResolvedGrowth {
  if (growth === undefined) return { kind: 'saturating' };
  if (typeof growth === 'string') {
    if (growth === 'saturating' || growth === 'fixed' || growth === 'full') return { kind: growth };
    throw new OvqInputError(
      'config.growth',
      `got ${describe(growth)}; expected 'saturating', 'fixed', 'full' or an object {kind: 'log'|'sqrt'|'linear', …}`,
    );
  }
  if (typeof growth !== 'object' || growth === null) {
    throw new OvqInputError(
      'config.growth',
      `got ${describe(growth)}; expected a string or object`,
    );
  }
  switch (growth.kind) {
    case 'saturating': {
      rejectUnknownKeys('config.growth', growth, ['kind', 'rows']);
      const rows = (growth as { rows?: unknown }).rows;
      return rows === undefined
        ? { kind: 'saturating' }
        : { kind: 'saturating', rows: requirePositiveInteger('config.growth.rows', rows) };
    }
    case 'fixed':
    case 'full':
      rejectUnknownKeys('config.growth', growth, ['kind']);
      return { kind: growth.kind };
    case 'log':
      rejectUnknownKeys('config.growth', growth, ['kind', 'alpha']);
      return { kind: 'log', alpha: requirePositiveFinite('config.growth.alpha', growth.alpha) };
    case 'sqrt':
      rejectUnknownKeys('config.growth', growth, ['kind', 'scale']);
      return { kind: 'sqrt', scale: requirePositiveFinite('config.growth.scale', growth.scale) };
    case 'linear':
      rejectUnknownKeys('config.growth', growth, ['kind', 'rate']);
      return { kind: 'linear', rate: requirePositiveFinite('config.growth.rate', growth.rate) };
    default:
      throw new OvqInputError(
        'config.growth.kind',
        `got ${describe((growth as { kind: unknown }).kind)}; expected saturating, fixed, full, log, sqrt or linear`,
      );
  }
}

function resolveUpdate(update: OvqConfig['update']): ResolvedOvqConfig['update'] {
  if (update === undefined || update === 'mean') return { kind: 'mean' };
  if (typeof update === 'object' && update !== null) {
    if (update.kind === 'mean') {
      rejectUnknownKeys('config.update', update, ['kind']);
      return { kind: 'mean' };
    }
    if (update.kind === 'ema') {
      rejectUnknownKeys('config.update', update, ['kind', 'rate']);
      const rate = update.rate;
      if (typeof rate !== 'number' || !(rate > 0 && rate <= 1)) {
        throw new OvqInputError(
          'config.update.rate',
          `got ${describe(rate)}; expected 0 < rate ≤ 1`,
        );
      }
      return { kind: 'ema', rate };
    }
  }
  throw new OvqInputError(
    'config.update',
    `got ${describe(update)}; expected 'mean', {kind: 'mean'} or {kind: 'ema', rate}`,
  );
}

const CONFIG_KEYS = [
  'chunkSize',
  'capacity',
  'beta',
  'growth',
  'spawn',
  'spawnDistance',
  'read',
  'update',
  'normalize',
  'seed',
] as const;

/** Validates an OvqConfig and fills in every default (ALGORITHM.md marks them). */
export function resolveOvqConfig(config: OvqConfig): ResolvedOvqConfig {
  if (typeof config !== 'object' || config === null) {
    throw new OvqInputError('config', `got ${describe(config)}; expected an object`);
  }
  rejectUnknownKeys('config', config, CONFIG_KEYS);
  const spawn = config.spawn ?? 'farthest';
  if (spawn !== 'farthest' && spawn !== 'first' && spawn !== 'random') {
    throw new OvqInputError(
      'config.spawn',
      `got ${describe(spawn)}; expected 'farthest', 'first' or 'random'`,
    );
  }
  const spawnDistance = config.spawnDistance;
  if (
    spawnDistance !== undefined &&
    !(typeof spawnDistance === 'number' && spawnDistance > 0) // NaN fails `> 0` too
  ) {
    throw new OvqInputError(
      'config.spawnDistance',
      `got ${describe(spawnDistance)}; expected a number > 0 (a squared key distance; Infinity or absent turns novelty spawn off)`,
    );
  }
  const read = config.read ?? 'dot';
  if (read !== 'dot' && read !== 'gaussian') {
    throw new OvqInputError('config.read', `got ${describe(read)}; expected 'dot' or 'gaussian'`);
  }
  const normalize = config.normalize ?? true;
  if (typeof normalize !== 'boolean') {
    throw new OvqInputError(
      'config.normalize',
      `got ${describe(normalize)}; expected true or false`,
    );
  }
  const seed = config.seed ?? 0;
  if (typeof seed !== 'number' || !Number.isInteger(seed)) {
    throw new OvqInputError('config.seed', `got ${describe(seed)}; expected an integer`);
  }
  return {
    chunkSize: requirePositiveInteger('config.chunkSize', config.chunkSize),
    capacity: requirePositiveInteger('config.capacity', config.capacity),
    beta: requirePositiveFinite('config.beta', config.beta),
    growth: resolveGrowth(config.growth),
    spawn,
    ...(spawnDistance === undefined || spawnDistance === Number.POSITIVE_INFINITY
      ? {}
      : { spawnDistance }),
    read,
    update: resolveUpdate(config.update),
    normalize,
    seed,
  };
}

/** Dimensions of a validated sequence. */
export type SeqDims = { seqLen: number; keyDim: number; valueDim: number };

/** Validates the shape fields and the three arrays of a one-head sequence. */
export function validateSeq(
  seq: {
    q: unknown;
    k: unknown;
    v: unknown;
    seqLen: unknown;
    keyDim: unknown;
    valueDim: unknown;
  },
  argument = 'seq',
): SeqDims {
  if (typeof seq !== 'object' || seq === null) {
    throw new OvqInputError(
      argument,
      `got ${describe(seq)}; expected {q, k, v, seqLen, keyDim, valueDim}`,
    );
  }
  const seqLen = requireNonNegativeInteger(`${argument}.seqLen`, seq.seqLen);
  const keyDim = requirePositiveInteger(`${argument}.keyDim`, seq.keyDim);
  const valueDim = requirePositiveInteger(`${argument}.valueDim`, seq.valueDim);
  requireFiniteArray(`${argument}.q`, seq.q, seqLen * keyDim, 'seqLen*keyDim');
  requireFiniteArray(`${argument}.k`, seq.k, seqLen * keyDim, 'seqLen*keyDim');
  requireFiniteArray(`${argument}.v`, seq.v, seqLen * valueDim, 'seqLen*valueDim');
  return { seqLen, keyDim, valueDim };
}
