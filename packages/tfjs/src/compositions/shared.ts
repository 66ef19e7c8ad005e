// Helpers shared by the compositions: L2 normalisation, causal and band masks, rotary embeddings,
// splitting the time axis into chunks, and a cumsum whose gradient is right on every backend.
import {
  add,
  cumsum,
  customGrad,
  type GradSaveFunc,
  getBackend,
  greaterEqual,
  less,
  logicalAnd,
  maximum,
  mul,
  pad,
  range,
  reshape,
  reverse,
  rsqrt,
  scalar,
  slice,
  square,
  stack,
  sub,
  sum,
  type Tensor,
  tensor2d,
  tidy,
  transpose,
  unstack,
  where,
} from '@tensorflow/tfjs-core';

/** x / max(‖x‖, 1e-12) over the last axis, written so that its gradient is finite at x = 0. */
export function l2Normalize(x: Tensor): Tensor {
  return mul(x, rsqrt(maximum(sum(square(x), -1, true), scalar(1e-24))));
}

/** [T, T] mask: key s is visible to query t when t − window < s ≤ t. */
export function causalMask(seqLen: number, window: number): Tensor {
  const m = new Float32Array(seqLen * seqLen);
  for (let t = 0; t < seqLen; t++) {
    for (let s = Math.max(0, t - window + 1); s <= t; s++) m[t * seqLen + s] = 1;
  }
  return tensor2d(m, [seqLen, seqLen]);
}

/** Rotary embedding on interleaved pairs (x[2i], x[2i+1]) at positions 0…T−1, as @ovq/baselines. */
export function rope(x: Tensor, base: number): Tensor {
  const [B, H, T, d] = x.shape as number[];
  const half = d / 2;
  const cos = new Float32Array(T * half);
  const sin = new Float32Array(T * half);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < half; i++) {
      const theta = t * base ** ((-2 * i) / d);
      cos[t * half + i] = Math.cos(theta);
      sin[t * half + i] = Math.sin(theta);
    }
  }
  const c = tensor2d(cos, [T, half]);
  const s = tensor2d(sin, [T, half]);
  const [a, b] = unstack(reshape(x, [B, H, T, half, 2]), 4);
  const rotated = stack([sub(mul(a, c), mul(b, s)), add(mul(a, s), mul(b, c))], 4);
  return reshape(rotated, [B, H, T, d]);
}

/** The error of a mixer that has neither a host kernel nor a composition on this backend. */
export function noComposition(kernelName: string): never {
  throw new Error(
    `${kernelName}: no kernel for the '${getBackend()}' backend; expected one of cpu, wasm (see @ovq/tfjs README, "Backends")`,
  );
}

/**
 * [rows, cols] bool mask of query positions rowStart… against key positions colStart…: key s is
 * visible to query t when 0 ≤ t − s < window. Built on the device from two position ranges.
 */
export function bandMask(
  rowStart: number,
  rows: number,
  colStart: number,
  cols: number,
  window: number,
): Tensor {
  return tidy(() => {
    const t = reshape(range(rowStart, rowStart + rows, 1, 'int32'), [rows, 1]);
    const s = reshape(range(colStart, colStart + cols, 1, 'int32'), [1, cols]);
    const offset = sub(t, s);
    return logicalAnd(
      greaterEqual(offset, scalar(0, 'int32')),
      less(offset, scalar(window, 'int32')),
    );
  });
}

/**
 * Splits the time axis (axis 2) of x [B, H, T, …] into chunks: [B, H, ceil(T / chunk), chunk, …],
 * padding the end with zeros. Causal compositions never let a padded step reach a real one.
 */
export function toChunks(x: Tensor, chunk: number): Tensor {
  const [B, H, T, ...rest] = x.shape as number[];
  const n = Math.ceil(T / chunk);
  const padded =
    n * chunk === T
      ? x
      : pad(x, [[0, 0], [0, 0], [0, n * chunk - T], ...rest.map((): [number, number] => [0, 0])]);
  return reshape(padded, [B, H, n, chunk, ...rest]);
}

/** Inverse of `toChunks`: [B, H, n, chunk, d] back to [B, H, seqLen, d], dropping the padding. */
export function fromChunks(x: Tensor, seqLen: number): Tensor {
  const [B, H, n, chunk, d] = x.shape as number[];
  const flat = reshape(x, [B, H, n * chunk, d]);
  return n * chunk === seqLen ? flat : slice(flat, [0, 0, 0, 0], [B, H, seqLen, d]);
}

/**
 * cumsum of a matrix along its rows, with the gradient (a reversed cumsum) written as
 * reverse ∘ cumsum ∘ reverse: tfjs-backend-webgpu 4.22 computes Cumsum with reverse = true wrongly
 * for most shapes, and tfjs-core's Cumsum gradient uses it.
 */
function rowCumsum(exclusive: boolean) {
  return customGrad((...args: (Tensor | GradSaveFunc)[]) => {
    const x = args[0] as Tensor;
    return {
      value: cumsum(x, 1, exclusive),
      gradFunc: (dy: Tensor) => reverse(cumsum(reverse(dy, 1), 1, exclusive), 1),
    };
  });
}
const inclusiveRowCumsum = rowCumsum(false);
const exclusiveRowCumsum = rowCumsum(true);

/**
 * cumsum along `axis`, computed along the rows of a matrix: tfjs-core 4.22's Cumsum gradient
 * transposes its result wrongly for any axis but the last, and the webgpu backend's Cumsum takes
 * rank ≤ 4.
 */
export function cumsumAlong(x: Tensor, axis: number, exclusive = false): Tensor {
  const last = x.rank - 1;
  const at = axis < 0 ? x.rank + axis : axis;
  const perm = [...Array(x.rank).keys()];
  perm[at] = last;
  perm[last] = at;
  const moved = at === last ? x : transpose(x, perm);
  const n = moved.shape[last] as number;
  const rows = reshape(moved, [-1, n]);
  const summed = reshape((exclusive ? exclusiveRowCumsum : inclusiveRowCumsum)(rows), moved.shape);
  return at === last ? summed : transpose(summed, perm);
}

/**
 * `bandMask` as an additive bias: 0 where visible, −∞ elsewhere. Adding it broadcasts natively,
 * unlike `where`, which tiles its operands (and the webgpu backend tiles rank ≥ 5 on the host).
 */
export function bandBias(
  rowStart: number,
  rows: number,
  colStart: number,
  cols: number,
  window: number,
): Tensor {
  return tidy(() =>
    where(
      bandMask(rowStart, rows, colStart, cols, window),
      scalar(0),
      scalar(Number.NEGATIVE_INFINITY),
    ),
  );
}
