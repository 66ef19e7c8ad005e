// Transformer-VQ attention as a composition of tfjs ops (the webgpu route), blocked and batched:
// every query of block b reads, in one softmax over S + 2L logits, one row per code for the tokens
// of blocks ≤ b − 2 (logit βq·c_j + ln n_j, value Σv / n_j) and the raw tokens of blocks b − 1 and
// b (logit βq·c_{z_s}, value v_s). Memory is O(T·(S + 2L) + T/L·S·dv); there is no T×T matrix.
// Gradients follow @ovq/baselines' vqAttentionBackward (see straightThrough below).
import { createVqState, type VqConfig } from '@ovq/baselines';
import {
  broadcastTo,
  concat,
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
  square,
  sub,
  sum,
  type Tensor,
  type Tensor4D,
  tensor4d,
  tidy,
  transpose,
  where,
  zeros,
  zerosLike,
} from '@tensorflow/tfjs-core';
import {
  bandBias,
  blockedSoftmaxRead,
  constantOf,
  cumsumAlong,
  type ReadSegment,
} from './shared.js';

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
 * The cache rows' keys with `cacheKeyGradient`: forward, the codebook [1, BH, S, dk] for every
 * block ([blocks, BH, S, dk], blocks first); backward, the codebook gets the blocks' summed
 * gradient as without the option, and a key s of block b gets its row's gradient divided by the
 * row's count, summed over the query blocks that read it from the cache (b' ≥ b + 2): the
 * gradient of a row key c_j + mean(k) − sg(mean(k)). Inputs: keys [BH, blocks, L, dk], the
 * one-hot codes [BH, blocks, L, S] and the cache counts floored at 1 [BH, blocks, S] (constants).
 * Only built when there is a cache, i.e. blocks > 2.
 */
const cacheRowKeys = customGrad((...args: (Tensor | GradSaveFunc)[]) => {
  const [codebook, keys, oneHot, counts] = args as Tensor[];
  const [BH, blocks] = keys.shape as number[];
  return {
    value: broadcastTo(codebook, [blocks, ...codebook.shape.slice(1)]),
    gradFunc: (dy: Tensor) => {
      const [, , S, dk] = dy.shape as number[];
      // Per query block b': the row gradient over the row's count, [BH, blocks, S, dk].
      const perRow = div(transpose(dy, [1, 0, 2, 3]), expandDims(counts, 3));
      // Key block b gets the sum over b' ≥ b + 2: a reversed cumulative sum, shifted by two.
      const later = reverse(cumsumAlong(reverse(perRow, 1), 1), 1);
      const fromTwoOn = concat(
        [slice(later, [0, 2, 0, 0], [BH, blocks - 2, S, dk]), zeros([BH, 2, S, dk])],
        1,
      );
      return [sum(dy, 0, true), matMul(oneHot, fromTwoOn), zerosLike(oneHot), zerosLike(counts)];
    },
  };
});

/**
 * One-hot [B, H, T, S] of each key's nearest code: z_s = argmin_j ‖k_s − c_j‖² = argmin_j
 * ‖c_j‖² − 2k_s·c_j, ties to the lowest j on every backend (webgpu's argMin does not promise
 * that), as @ovq/baselines' nearestCode. keys [B, H, T, dk], codebook [B, H, S, dk].
 */
export function nearestCodeOneHot(keys: Tensor, codebook: Tensor): Tensor {
  return tidy(() => {
    const S = codebook.shape[2] as number;
    const dist = sub(
      expandDims(sum(square(codebook), -1), 2),
      mul(matMul(keys, codebook, false, true), 2),
    );
    const index = range(0, S);
    const z = min(where(lessEqual(dist, min(dist, -1, true)), index, S), -1, true);
    // A float one-hot made by `where`: webgpu's int32 → float32 cast keeps the int32 buffer,
    // which later kernels (transpose) cannot read as float32.
    return where(equal(index, z), onesLike(dist), zerosLike(dist));
  });
}

/** `f(...inputs)` as a constant of the backward pass (the comparisons in `f` have no gradient). */
function constant(f: (...xs: Tensor[]) => Tensor, ...inputs: Tensor[]): Tensor {
  return constantOf(() => f(...inputs));
}

/** For every block b, the sum of `perBlock` [B·H, blocks, …] over blocks ≤ b − 2 (zeros for b < 2). */
function olderThanPreviousBlock(perBlock: Tensor): Tensor {
  const [BH, blocks, ...rest] = perBlock.shape as number[];
  const kept = slice(perBlock, new Array(rest.length + 2).fill(0), [BH, blocks - 2, ...rest]);
  return cumsumAlong(concat([zeros([BH, 2, ...rest]), kept], 1), 1);
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

    const codeOneHot = constant(nearestCodeOneHot, kp, cb);

    // The read takes blocks first: [BH, blocks, …] → [blocks, BH, …].
    const blocksFirst = (x: Tensor) => transpose(x, [1, 0, 2, 3]);
    // Local part: raw tokens of the previous and current block, keys straight-through codes.
    const kCode = blocksFirst(reshape(straightThrough(kp, codeOneHot, cb), [BH, blocks, L, dk]));
    const vBlocks = blocksFirst(reshape(vp, [BH, blocks, L, dv]));
    const segments: ReadSegment[] = [
      // Query i of a block sees keys j ≤ i of its own block…
      { keys: kCode, values: vBlocks, bias: reshape(bandBias(0, L, 0, L, L), [1, 1, L, L]) },
    ];
    if (blocks > 1) {
      // …and every key of the previous block (none for block 0).
      const firstBlockHidden = new Float32Array(blocks);
      firstBlockHidden[0] = Number.NEGATIVE_INFINITY;
      segments.push({
        keys: kCode,
        values: vBlocks,
        bias: tensor4d(firstBlockHidden, [blocks, 1, 1, 1]),
        shift: 1,
      });
    }
    if (blocks > 2) {
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
      const sharedCodes = reshape(cb, [1, BH, S, dk]);
      segments.push({
        keys:
          config.cacheKeyGradient === true
            ? cacheRowKeys(
                sharedCodes,
                reshape(kp, [BH, blocks, L, dk]),
                reshape(codeOneHot, [BH, blocks, L, S]),
                nonZero,
              )
            : sharedCodes,
        values: blocksFirst(div(cacheSums, expandDims(nonZero, 3))),
        bias: blocksFirst(reshape(logCount, [BH, blocks, 1, S])),
      });
    }
    const y = blockedSoftmaxRead(blocksFirst(reshape(qp, [BH, blocks, L, dk])), segments, beta);
    return slice(reshape(blocksFirst(y), [B, H, Tp, dv]), 0, [B, H, T, dv]) as Tensor4D;
  });
}
