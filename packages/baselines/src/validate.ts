// Input checks shared by every mixer. Errors name the argument, the value and what was expected.
import type { FloatArray } from './common.js';

export class BaselineInputError extends Error {
  override name = 'BaselineInputError';
}

function fail(message: string): never {
  throw new BaselineInputError(message);
}

export function checkInteger(name: string, value: unknown, min: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    fail(`${name} is ${String(value)}; expected an integer ≥ ${min}`);
  }
  return value;
}

export function checkPositive(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(`${name} is ${String(value)}; expected a finite number > 0`);
  }
  return value;
}

function isFloatArray(x: unknown): x is FloatArray {
  return x instanceof Float32Array || x instanceof Float64Array;
}

/** Checks type, length and finiteness of a row-major [rows, width] array. */
export function checkArray(
  name: string,
  x: unknown,
  length: number,
  lengthExpr: string,
): FloatArray {
  if (!isFloatArray(x)) {
    fail(`${name} is ${x === null ? 'null' : typeof x}; expected a Float32Array or Float64Array`);
  }
  if (x.length !== length)
    fail(`${name} has ${x.length} values; expected ${lengthExpr} = ${length}`);
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) fail(`${name}[${i}] is ${x[i]}; expected a finite number`);
  }
  return x;
}

/** The one-head sequence shape every mixer takes (mirrors `Seq` from @ovq/core). */
export type SeqShape = { seqLen: number; keyDim: number; valueDim: number };

export function checkSeq(
  seq: unknown,
  dims?: { keyDim: number; valueDim: number },
): asserts seq is SeqShape & { q: FloatArray; k: FloatArray; v: FloatArray } {
  if (typeof seq !== 'object' || seq === null) fail(`seq is ${String(seq)}; expected an object`);
  const s = seq as Record<string, unknown>;
  const seqLen = checkInteger('seqLen', s.seqLen, 0);
  const keyDim = checkInteger('keyDim', s.keyDim, 1);
  const valueDim = checkInteger('valueDim', s.valueDim, 1);
  if (dims && (dims.keyDim !== keyDim || dims.valueDim !== valueDim)) {
    fail(
      `seq has keyDim ${keyDim}, valueDim ${valueDim}; expected the state's keyDim ${dims.keyDim}, valueDim ${dims.valueDim}`,
    );
  }
  checkArray('q', s.q, seqLen * keyDim, 'seqLen*keyDim');
  checkArray('k', s.k, seqLen * keyDim, 'seqLen*keyDim');
  checkArray('v', s.v, seqLen * valueDim, 'seqLen*valueDim');
}

/** A per-token scalar input (decay, gate) with every value inside [lo, hi] (open ends optional). */
export function checkPerToken(
  name: string,
  x: unknown,
  seqLen: number,
  lo: number,
  hi: number,
  openLo: boolean,
  openHi: boolean,
): FloatArray {
  const arr = checkArray(name, x, seqLen, 'seqLen');
  for (let i = 0; i < arr.length; i++) {
    const a = arr[i];
    if ((openLo ? a <= lo : a < lo) || (openHi ? a >= hi : a > hi)) {
      const range = `${openLo ? '(' : '['}${lo}, ${hi}${openHi ? ')' : ']'}`;
      fail(`${name}[${i}] is ${a}; expected a value in ${range}`);
    }
  }
  return arr;
}

export function checkDOutput(dOutput: unknown, seqLen: number, valueDim: number): FloatArray {
  return checkArray('dOutput', dOutput, seqLen * valueDim, 'seqLen*valueDim');
}

/** An optional caller-provided output buffer (fast paths write every element of it). */
export function checkOut(out: unknown, length: number): Float32Array {
  if (out === undefined) return new Float32Array(length);
  if (!(out instanceof Float32Array)) fail(`out is ${typeof out}; expected a Float32Array`);
  if (out.length !== length)
    fail(`out has ${out.length} values; expected seqLen*valueDim = ${length}`);
  return out;
}

export { fail as inputError };

/** Throws unless a state's resolved config equals the one asked for (a stream cannot change config). */
export function checkSameConfig(stateConfig: unknown, config: unknown): void {
  if (JSON.stringify(stateConfig) !== JSON.stringify(config)) {
    fail(
      `config is ${JSON.stringify(config)}; expected the state's config ${JSON.stringify(stateConfig)}`,
    );
  }
}

/** Throws unless a state belongs to the named mixer and has the sequence's dims. */
export function checkState(state: unknown, mixer: string): void {
  if (
    typeof state !== 'object' ||
    state === null ||
    (state as { mixer?: unknown }).mixer !== mixer
  ) {
    fail(`state is not a ${mixer} state; expected the result of create…State or a previous call`);
  }
}
