// Argument checks shared by the entry points: every error names the argument, the value and what
// was expected.
import { WebGpuError } from './errors.js';
import type { GpuTensor } from './tensor.js';

/** Shape of a multi-head input: [batchHeads, seqLen, dim] row-major (batch-major, then head). */
export type HeadsDims = { batchHeads: number; seqLen: number; keyDim: number; valueDim: number };

export function requirePositiveInt(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
    throw new WebGpuError(argument, `got ${String(value)}; expected a positive integer`);
  }
  return value;
}

export function requireNonNegativeInt(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new WebGpuError(argument, `got ${String(value)}; expected a non-negative integer`);
  }
  return value;
}

export function requirePositive(argument: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new WebGpuError(argument, `got ${String(value)}; expected a finite number > 0`);
  }
  return value;
}

export function checkDims(dims: HeadsDims, allowEmpty = false): HeadsDims {
  requirePositiveInt('batchHeads', dims.batchHeads);
  if (allowEmpty) requireNonNegativeInt('seqLen', dims.seqLen);
  else requirePositiveInt('seqLen', dims.seqLen);
  requirePositiveInt('keyDim', dims.keyDim);
  requirePositiveInt('valueDim', dims.valueDim);
  return dims;
}

/** Checks a host array has exactly `shape` values. */
export function checkArray(
  argument: string,
  array: unknown,
  shape: readonly number[],
  shapeName: string,
): Float32Array {
  if (!(array instanceof Float32Array) && !(array instanceof Float64Array)) {
    throw new WebGpuError(
      argument,
      `got ${array === null ? 'null' : typeof array}; expected a Float32Array [${shapeName}]`,
    );
  }
  const want = shape.reduce((a, b) => a * b, 1);
  if (array.length !== want) {
    throw new WebGpuError(
      argument,
      `has ${array.length} values; expected ${shapeName} = ${shape.join('*')} = ${want}`,
    );
  }
  return array instanceof Float32Array ? array : Float32Array.from(array);
}

/** Checks a GPU tensor has `shape` and is alive. */
export function checkTensor(
  argument: string,
  t: GpuTensor,
  shape: readonly number[],
  shapeName: string,
  device?: GPUDevice,
  dtype: GpuTensor['dtype'] = 'f32',
): GpuTensor {
  if (!t || typeof t !== 'object' || !('buffer' in t)) {
    throw new WebGpuError(argument, `got ${String(t)}; expected a GpuTensor [${shapeName}]`);
  }
  if (t.disposed) throw new WebGpuError(argument, 'was disposed');
  if (device && t.device && t.device !== device) {
    throw new WebGpuError(
      argument,
      `was created on another GPUDevice than the state's; upload it with the same GpuContext`,
    );
  }
  const want = shape.reduce((a, b) => a * b, 1);
  if (t.length !== want) {
    throw new WebGpuError(
      argument,
      `has shape [${t.shape.join(', ')}] (${t.length} values); expected ${shapeName} = [${shape.join(', ')}]`,
    );
  }
  if (t.dtype !== dtype) {
    throw new WebGpuError(argument, `has dtype ${t.dtype}; expected ${dtype}`);
  }
  return t;
}

/** Optional check (`checkFinite` option of the entry points): throws at the first NaN or ±∞. */
export function checkFinite(argument: string, array: ArrayLike<number>): void {
  for (let i = 0; i < array.length; i++) {
    if (!Number.isFinite(array[i])) {
      throw new WebGpuError(argument, `has ${array[i]} at index ${i}; expected finite values`);
    }
  }
}
