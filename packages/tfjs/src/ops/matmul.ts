// A 2-D matMul whose forward and gradient never use tfjs's transposeA/transposeB flags.
//
// Why: tfjs-backend-wasm 4.22's BatchMatMul with a transposed operand is about 15× slower than an
// explicit `transpose` followed by a plain matMul ([4096,128]ᵀ·[4096,512]: ~400 ms vs ~25 ms on
// one core), and tfjs's own matMul gradient uses exactly those flags (dA = dC·Bᵀ via transposeB,
// dB = Aᵀ·dC via transposeA). Training dense layers through tf.matMul therefore spends most of
// its time in the slow path. Here every operand is transposed explicitly, in the forward and in
// a custom gradient, so only the fast path runs (on cpu and webgpu this costs one cheap
// transpose per product).
import {
  customGrad,
  type GradSaveFunc,
  matMul,
  reshape,
  type Tensor,
  type Tensor2D,
  transpose,
} from '@tensorflow/tfjs-core';
import { describeShape, OvqTfjsInputError } from '../errors.js';

// c = a·b with plain (untransposed) products in both directions.
const plainMatMul = customGrad((...args: (Tensor | GradSaveFunc)[]) => {
  const [a, b, save] = args as [Tensor, Tensor, GradSaveFunc];
  save([a, b]);
  return {
    value: matMul(a as Tensor2D, b as Tensor2D),
    gradFunc: (dy: Tensor | Tensor[], saved: Tensor[]) => {
      const dc = dy as Tensor2D;
      const [sa, sb] = saved as Tensor2D[];
      return [matMul(dc, transpose(sb)), matMul(transpose(sa), dc)];
    },
  };
});

/**
 * `tf.matMul(a, b, transposeA, transposeB)` for 2-D tensors, with the same values and gradients,
 * that never runs tfjs's transposed-operand matMul (slow on tfjs-backend-wasm): transposes are
 * explicit, forward and backward.
 */
export function explicitMatMul(
  a: Tensor,
  b: Tensor,
  transposeA = false,
  transposeB = false,
): Tensor2D {
  if (a.rank !== 2 || b.rank !== 2) {
    throw new OvqTfjsInputError(
      'explicitMatMul: a, b',
      `have shapes ${describeShape(a.shape)} and ${describeShape(b.shape)}; expected two 2-D tensors`,
    );
  }
  const left = transposeA ? transpose(a) : a;
  const right = transposeB ? transpose(b) : b;
  if (left.shape[1] !== right.shape[0]) {
    throw new OvqTfjsInputError(
      'explicitMatMul: a, b',
      `have shapes ${describeShape(a.shape)} and ${describeShape(b.shape)} (transposeA ${transposeA}, transposeB ${transposeB}); expected inner dimensions to match`,
    );
  }
  return plainMatMul(left, right) as Tensor2D;
}

/**
 * x [..., D] · W [D, H] → [..., H] (or · Wᵀ with W [H, D] when `transposeW`): a dense layer's
 * product with explicit transposes (see explicitMatMul), for any leading shape.
 */
export function denseProduct(x: Tensor, w: Tensor, transposeW = false): Tensor {
  if (x.rank < 2 || w.rank !== 2) {
    throw new OvqTfjsInputError(
      'denseProduct: x, w',
      `have shapes ${describeShape(x.shape)} and ${describeShape(w.shape)}; expected x [..., D] and a 2-D w`,
    );
  }
  const lead = x.shape.slice(0, -1);
  const d = x.shape[x.rank - 1];
  const out = explicitMatMul(reshape(x, [-1, d]), w, false, transposeW);
  return reshape(out, [...lead, out.shape[1]]);
}
