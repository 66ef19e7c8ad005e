// Shape and dtype checks shared by the ops. Every op takes [batch, heads, seqLen, dim] tensors.
import { Tensor } from '@tensorflow/tfjs-core';
import { describeShape, OvqTfjsInputError } from '../errors.js';

export type MixerDims = {
  batch: number;
  heads: number;
  seqLen: number;
  keyDim: number;
  valueDim: number;
};

export function requireTensor(argument: string, x: unknown, rank: number, op: string): Tensor {
  if (!(x instanceof Tensor)) {
    throw new OvqTfjsInputError(`${op}: ${argument}`, `got ${typeof x}; expected a tf.Tensor`);
  }
  if (x.rank !== rank) {
    throw new OvqTfjsInputError(
      `${op}: ${argument}`,
      `has shape ${describeShape(x.shape)} (rank ${x.rank}); expected rank ${rank}`,
    );
  }
  if (x.dtype !== 'float32') {
    throw new OvqTfjsInputError(`${op}: ${argument}`, `has dtype ${x.dtype}; expected float32`);
  }
  return x;
}

/** Checks q, k [batch, heads, seqLen, keyDim] and v [batch, heads, seqLen, valueDim]. */
export function checkQkv(op: string, q: unknown, k: unknown, v: unknown): MixerDims {
  const tq = requireTensor('q', q, 4, op);
  const tk = requireTensor('k', k, 4, op);
  const tv = requireTensor('v', v, 4, op);
  const [batch, heads, seqLen, keyDim] = tq.shape;
  if (tk.shape.some((n, i) => n !== tq.shape[i])) {
    throw new OvqTfjsInputError(
      `${op}: k`,
      `has shape ${describeShape(tk.shape)}; expected q's shape ${describeShape(tq.shape)}`,
    );
  }
  if (tv.shape[0] !== batch || tv.shape[1] !== heads || tv.shape[2] !== seqLen) {
    throw new OvqTfjsInputError(
      `${op}: v`,
      `has shape ${describeShape(tv.shape)}; expected [${batch}, ${heads}, ${seqLen}, valueDim] (q is [batch, heads, seqLen, keyDim])`,
    );
  }
  if (keyDim === 0 || tv.shape[3] === 0) {
    throw new OvqTfjsInputError(`${op}: q/v`, 'have an empty feature dimension; expected ≥ 1');
  }
  return { batch, heads, seqLen, keyDim, valueDim: (tv.shape as number[])[3] };
}

/** Checks a per-token input of shape [batch, heads, seqLen]. */
export function checkPerToken(op: string, argument: string, x: unknown, dims: MixerDims): Tensor {
  const t = requireTensor(argument, x, 3, op);
  const { batch, heads, seqLen } = dims;
  if (t.shape[0] !== batch || t.shape[1] !== heads || t.shape[2] !== seqLen) {
    throw new OvqTfjsInputError(
      `${op}: ${argument}`,
      `has shape ${describeShape(t.shape)}; expected [batch, heads, seqLen] = [${batch}, ${heads}, ${seqLen}]`,
    );
  }
  return t;
}

/** Checks a per-head input of shape [heads]. */
export function checkPerHead(op: string, argument: string, x: unknown, dims: MixerDims): Tensor {
  const t = requireTensor(argument, x, 1, op);
  if (t.shape[0] !== dims.heads) {
    throw new OvqTfjsInputError(
      `${op}: ${argument}`,
      `has shape ${describeShape(t.shape)}; expected [heads] = [${dims.heads}]`,
    );
  }
  return t;
}
