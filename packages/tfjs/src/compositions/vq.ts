// Transformer-VQ attention as a composition of tfjs ops (the webgpu route), blocked and batched:
// every query of block b reads, in one softmax over S + 2L logits, one row per code for the tokens
// of blocks ≤ b − 2 (logit βq·c_j + ln n_j, value Σv / n_j) and the raw tokens of blocks b − 1 and
// b (logit βq·c_{z_s}, value v_s). Memory is O(T·(S + 2L) + T/L·S·dv); there is no T×T matrix.
// Gradients follow @ovq/baselines' vqAttentionBackward (see straightThrough below).
import { createVqState, type VqConfig } from '@ovq/baselines';
import {
  add,
  broadcastTo,
  concat,
  cumsum,
  customGrad,
  div,
  equal,
  expandDims,
  type GradSaveFunc,
  greater,
  lessEqual,
  log,
  matMul,
  maximum,
  min,
  mul,
  onesLike,
  pad,
  range,
  reshape,
  reverse,
  scalar,
  slice,
  softmax,
  square,
  sub,
  sum,
  type Tensor,
  type Tensor4D,
  tensor3d,
  tidy,
  where,
  zeros,
  zerosLike,
} from '@tensorflow/tfjs-core';

/**
 * Forward: the code of every key, oneHot·codebook = c_{z_s}; backward: the whole gradient goes to
 * the keys, none to the codebook — the reference's straight-through raw key k + sg(c_z − k).
 */
const straightThrough = customGrad((...args: (Tensor | GradSaveFunc)[]) => {
  const [, oneHot, codebook] = args as Tensor[];
  return {
    value: matMul(oneHot, codebook),
    gradFunc: (dy: Tensor) => [dy, zerosLike(oneHot), zerosLike(codebook)],
  };
});

/**
 * `f(...inputs)` as a constant of the backward pass (tfjs has no stopGradient): ops run inside a
 * customGrad's forward are not taped, so the comparisons in `f` (which have no gradient) are never
 * visited by tf.grads.
 */
function constant(f: (...xs: Tensor[]) => Tensor, ...inputs: Tensor[]): Tensor {
  const wrapped = customGrad((...args: (Tensor | GradSaveFunc)[]) => {
    const xs = args.slice(0, inputs.length) as Tensor[];
    return { value: f(...xs), gradFunc: () => xs.map((x) => zerosLike(x)) };
  });
  return wrapped(...inputs);
}

/**
 * [blocks, L, 2L] additive mask for the local logits: query i of block b sees key j of blocks b − 1
 * and b (stream position (b − 1)L + j) when 0 ≤ (b − 1)L + j ≤ bL + i.
 */
function localMask(blocks: number, L: number): Tensor {
  const m = new Float32Array(blocks * L * 2 * L).fill(Number.NEGATIVE_INFINITY);
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < L; i++) {
      for (let j = b === 0 ? L : 0; j <= L + i; j++) m[(b * L + i) * 2 * L + j] = 0;
    }
  }
  return tensor3d(m, [blocks, L, 2 * L]);
}

/** [B, H, blocks·L, d] → [B·H·blocks, 2L, d]: each block after its previous one (zeros for block 0). */
function withPreviousBlock(x: Tensor, BH: number, blocks: number, L: number): Tensor {
  const d = x.shape[3] as number;
  const shifted = reshape(
    pad(x, [
      [0, 0],
      [0, 0],
      [L, 0],
      [0, 0],
    ]),
    [BH, blocks + 1, L, d],
  );
  const previous = slice(shifted, [0, 0, 0, 0], [BH, blocks, L, d]);
  const current = slice(shifted, [0, 1, 0, 0], [BH, blocks, L, d]);
  return reshape(concat([previous, current], 2), [BH * blocks, 2 * L, d]);
}

/**
 * Inclusive cumsum over the blocks axis (1) with its own gradient, the reversed cumsum written with
 * `reverse`: tfjs 4.22's Cumsum gradient is wrong on any axis but the last, and webgpu's reverse
 * cumsum is wrong from 8 elements on.
 */
const cumsumBlocks = customGrad((...args: (Tensor | GradSaveFunc)[]) => ({
  value: cumsum(args[0] as Tensor, 1),
  gradFunc: (dy: Tensor) => reverse(cumsum(reverse(dy, 1), 1), 1),
}));

/** For every block b, the sum of `perBlock` [B·H, blocks, …] over blocks ≤ b − 2 (zeros for b < 2). */
function olderThanPreviousBlock(perBlock: Tensor): Tensor {
  const [BH, blocks, ...rest] = perBlock.shape as number[];
  const kept = slice(perBlock, new Array(rest.length + 2).fill(0), [BH, blocks - 2, ...rest]);
  return cumsumBlocks(concat([zeros([BH, 2, ...rest]), kept], 1));
}

export function vqComposite(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  codebook: Tensor,
  config: VqConfig,
): Tensor4D {
  const [B, H, T, dk] = q.shape as number[];
  const dv = v.shape[3] as number;
  // createVqState validates and resolves the config as the host op does (β default 1/√dk);
  // @ovq/baselines does not export resolveVqConfig itself.
  const {
    codebookSize: S,
    blockLength: L,
    beta,
  } = createVqState({ keyDim: dk, valueDim: dv }, config).config;
  const blocks = Math.ceil(T / L);
  const Tp = blocks * L;
  const BH = B * H;
  return tidy(() => {
    // Padding tokens sit after every real one: causally masked, and never old enough to be cached.
    const padT = (x: Tensor) =>
      Tp === T
        ? x
        : pad(x, [
            [0, 0],
            [0, 0],
            [0, Tp - T],
            [0, 0],
          ]);
    const qp = padT(q);
    const kp = padT(k);
    const vp = padT(v);
    const cb = broadcastTo(expandDims(codebook, 0), [B, H, S, dk]);

    // z_s = argmin_j ‖k_s − c_j‖² = argmin_j ‖c_j‖² − 2k_s·c_j; ties go to the lowest j on every
    // backend (webgpu's argMin does not promise that), as nearestCode's.
    const codeOneHot = constant(
      (keys, codes) => {
        const dist = sub(
          expandDims(sum(square(codes), -1), 2),
          mul(matMul(keys, codes, false, true), 2),
        );
        const index = range(0, S);
        const z = min(where(lessEqual(dist, min(dist, -1, true)), index, S), -1, true);
        // A float one-hot [B, H, Tp, S] made by `where`: webgpu's int32 → float32 cast keeps
        // the int32 buffer, which later kernels (transpose) cannot read as float32.
        return where(equal(index, z), onesLike(dist), zerosLike(dist));
      },
      kp,
      cb,
    );

    // Local part: raw tokens of the previous and current block, keys straight-through codes.
    const kCode = straightThrough(kp, codeOneHot, cb);
    const qBlocks = reshape(qp, [BH * blocks, L, dk]);
    const localScores = matMul(qBlocks, withPreviousBlock(kCode, BH, blocks, L), false, true);
    const localLogits = add(
      reshape(mul(localScores, beta), [BH, blocks, L, 2 * L]),
      localMask(blocks, L),
    );
    const vLocal = withPreviousBlock(vp, BH, blocks, L);
    if (blocks <= 2) {
      // No block has a cache yet: only the local rows.
      const y = matMul(reshape(softmax(localLogits), [BH * blocks, L, 2 * L]), vLocal);
      return slice(reshape(y, [B, H, Tp, dv]), 0, [B, H, T, dv]) as Tensor4D;
    }

    // Per-code cache of each block: counts and value sums of the tokens of blocks ≤ b − 2.
    const oneHotBlocks = reshape(codeOneHot, [BH * blocks, L, S]);
    const blockSums = matMul(oneHotBlocks, reshape(vp, [BH * blocks, L, dv]), true, false);
    const cacheSums = olderThanPreviousBlock(reshape(blockSums, [BH, blocks, S, dv]));
    const cacheCounts = olderThanPreviousBlock(sum(reshape(codeOneHot, [BH, blocks, L, S]), 2));
    const nonZero = maximum(cacheCounts, 1); // keeps the division finite on absent rows
    // Absent codes get −∞ before the softmax (weight 0, gradient 0), never log(0).
    const logCount = constant(
      (n) => where(greater(n, 0), log(maximum(n, 1)), scalar(Number.NEGATIVE_INFINITY)),
      cacheCounts,
    );
    const qCodeLogits = reshape(mul(matMul(qp, cb, false, true), beta), [BH, blocks, L, S]);
    const cacheLogits = add(qCodeLogits, expandDims(logCount, 2));
    const cacheValues = div(cacheSums, expandDims(nonZero, 3));

    const p = softmax(concat([cacheLogits, localLogits], 3)); // [BH, blocks, L, S + 2L]
    const pCache = reshape(slice(p, [0, 0, 0, 0], [BH, blocks, L, S]), [BH * blocks, L, S]);
    const pLocal = reshape(slice(p, [0, 0, 0, S], [BH, blocks, L, 2 * L]), [BH * blocks, L, 2 * L]);
    const y = add(
      matMul(pCache, reshape(cacheValues, [BH * blocks, S, dv])),
      matMul(pLocal, vLocal),
    );
    return slice(reshape(y, [B, H, Tp, dv]), 0, [B, H, T, dv]) as Tensor4D;
  });
}
