// Helpers shared by the compositions: L2 normalisation, causal and band masks, rotary embeddings,
// splitting the time axis into chunks, and a cumsum whose gradient is right on every backend.
import {
  add,
  addN,
  concat,
  cumsum,
  customGrad,
  dispose,
  div,
  exp,
  type GradSaveFunc,
  getBackend,
  greaterEqual,
  less,
  log,
  logicalAnd,
  matMul,
  max,
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
  zeros,
  zerosLike,
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

/**
 * One key set of a `blockedSoftmaxRead`, blocks first: keys [nB, N, n, dk] and values
 * [nB, N, n, dv] per block, or [1, N, n, ·] shared by every block; with `shift` s, query block b
 * reads key/value block b − s (zeros for b < s: hide them in the bias), so that neighbouring
 * blocks need no copy. An optional additive bias (−∞ hides a key, a log-count is a prior) is
 * broadcastable to [nB, N, Lq, n], rank 4, indexed by the query block. A tensor may appear in
 * several segments.
 */
export type ReadSegment = { keys: Tensor; values: Tensor; bias?: Tensor; shift?: number };

/** Logit elements one group of blocks works on at once, in both passes. */
const READ_GROUP_ELEMENTS = 1 << 17;

/**
 * Blocks [from − shift, from − shift + size) along axis 0 (zeros before block 0), or x itself when
 * it is shared by every block. Blocks lead so that this slice is contiguous (the cpu backend's
 * strided slice is about a hundred times slower).
 */
function blockRange(x: Tensor, from: number, size: number, shift = 0): Tensor {
  // One leading block and no shift: a shared tensor (or a single block), read by every group.
  if (x.shape[0] === 1 && shift === 0) return x;
  const start = from - shift;
  const missing = Math.min(size, Math.max(0, -start));
  if (missing === size) return zeros([size, ...x.shape.slice(1)]);
  const begin = x.shape.map(() => 0);
  begin[0] = start + missing;
  const extent = x.shape.map(() => -1);
  extent[0] = size - missing;
  const part = slice(x, begin, extent);
  if (missing === 0) return part;
  return pad(
    part,
    x.shape.map((_, i): [number, number] => (i === 0 ? [missing, 0] : [0, 0])),
  );
}

/**
 * aᵀ · b per block [G, N, ·, ·], summed over the blocks when the result is `shared`: [1, N, ·, ·].
 * (The forward products need no such case: matMul broadcasts [1, N] against [G, N] by taking the
 * flattened batch index modulo N, which is right when the blocks lead.)
 */
function groupTransposedProduct(a: Tensor, b: Tensor, shared: boolean): Tensor {
  const product = matMul(a, b, true, false);
  return shared && a.shape[0] !== 1 ? sum(product, 0, true) : product;
}

/** Sums g over the axes where `shape` is 1: the gradient of a broadcast operand. */
function sumToShape(g: Tensor, shape: number[]): Tensor {
  const axes = shape.flatMap((n, i) => (n === 1 && g.shape[i] !== 1 ? [i] : []));
  return axes.length === 0 ? g : sum(g, axes, true);
}

/**
 * softmax(β q kᵀ + bias) · v per block, over the concatenation of `segments`' key sets, for queries
 * q [nB, N, Lq, dk] (blocks first): [nB, N, Lq, dv]. Every query row must see at least one key.
 * Flash-style: the blocks go in groups of about READ_GROUP_ELEMENTS logits, a customGrad saves
 * only the inputs, the output and the per-row log-sum-exp, and its backward recomputes each
 * group's probabilities (dS = P ∘ (dP − D), D = rowsum(dO ∘ O)) — no logits or probabilities
 * outlive a group, and no concatenated key set is ever built. `groupElements` (a test knob) sets
 * the group size.
 */
export function blockedSoftmaxRead(
  q: Tensor,
  segments: ReadSegment[],
  beta: number,
  groupElements = READ_GROUP_ELEMENTS,
): Tensor {
  const [nB, N, Lq] = q.shape as number[];
  const width = segments.reduce((n, s) => n + (s.keys.shape[2] as number), 0);
  const groupSize = Math.max(1, Math.floor(groupElements / (N * Lq * width)));
  const groups: [number, number][] = [];
  for (let from = 0; from < nB; from += groupSize) {
    groups.push([from, Math.min(groupSize, nB - from)]);
  }
  // The customGrad's inputs: q and each distinct tensor of the segments once.
  const inputs: Tensor[] = [q];
  const indexOf = (x: Tensor) => {
    const at = inputs.indexOf(x);
    return at >= 0 ? at : inputs.push(x) - 1;
  };
  for (const [i, s] of segments.entries()) {
    if ((s.shift ?? 0) > 0 && (s.keys.shape[0] !== nB || s.values.shape[0] !== nB)) {
      throw new Error(
        `blockedSoftmaxRead: segments[${i}] has shift ${s.shift} but keys/values with ${s.keys.shape[0]}/${s.values.shape[0]} leading blocks; a shifted segment must have one per query block (${nB})`,
      );
    }
  }
  const refs = segments.map((s) => ({
    keys: indexOf(s.keys),
    values: indexOf(s.values),
    bias: s.bias ? indexOf(s.bias) : -1,
    shift: s.shift ?? 0,
  }));
  const segmentsOf = (xs: Tensor[]): ReadSegment[] =>
    refs.map((r) => ({
      keys: xs[r.keys],
      values: xs[r.values],
      bias: r.bias >= 0 ? xs[r.bias] : undefined,
      shift: r.shift,
    }));
  /** β q kᵀ + bias of one group, one tensor per segment: [G, N, Lq, n]. */
  const groupLogits = (qg: Tensor, segs: ReadSegment[], from: number, size: number) =>
    segs.map((s) => {
      const scores = mul(matMul(qg, blockRange(s.keys, from, size, s.shift), false, true), beta);
      return s.bias ? add(scores, blockRange(s.bias, from, size)) : scores;
    });
  const read = customGrad((...args: (Tensor | GradSaveFunc)[]) => {
    const save = args[args.length - 1] as GradSaveFunc;
    const xs = args.slice(0, -1) as Tensor[];
    const segs = segmentsOf(xs);
    const outs: Tensor[] = [];
    const lses: Tensor[] = [];
    for (const [from, size] of groups) {
      const [o, lse] = tidy(() => {
        const logits = groupLogits(blockRange(xs[0], from, size), segs, from, size);
        const m = logits.map((x) => max(x, -1, true)).reduce((a, b) => maximum(a, b));
        const p = logits.map((x) => exp(sub(x, m)));
        const l = p.map((x) => sum(x, -1, true)).reduce((a, b) => add(a, b));
        const pv = p
          .map((x, i) => matMul(x, blockRange(segs[i].values, from, size, segs[i].shift)))
          .reduce((a, b) => add(a, b));
        return [div(pv, l), add(m, log(l))];
      });
      outs.push(o);
      lses.push(lse);
    }
    const out = outs.length === 1 ? outs[0] : concat(outs, 0);
    const lse = lses.length === 1 ? lses[0] : concat(lses, 0);
    if (outs.length > 1) dispose([...outs, ...lses]);
    save([...xs, out, lse]);
    return {
      value: out,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const xsS = saved.slice(0, -2);
        const [outS, lseS] = saved.slice(-2);
        const segs = segmentsOf(xsS);
        // Gradient pieces per group: of q, and of each segment's keys, values and bias.
        const dqs: Tensor[] = [];
        const pieces = segs.map(() => ({
          keys: [] as Tensor[],
          values: [] as Tensor[],
          bias: [] as Tensor[],
        }));
        for (const [from, size] of groups) {
          const grads = tidy(() => {
            const qg = blockRange(xsS[0], from, size);
            const dO = blockRange(dy, from, size);
            const logits = groupLogits(qg, segs, from, size);
            const lseG = blockRange(lseS, from, size);
            const rowDot = sum(mul(dO, blockRange(outS, from, size)), -1, true);
            // A shifted segment's first blocks may lie before block 0: their gradient is dropped.
            const skip = (g: Tensor, s: ReadSegment) => {
              const before = Math.min(size, Math.max(0, (s.shift ?? 0) - from));
              if (before === 0) return g; // only shifted (hence per-block) segments skip
              const begin = g.shape.map(() => 0);
              begin[0] = before;
              return slice(
                g,
                begin,
                g.shape.map((n, i) => (i === 0 ? n - before : -1)),
              );
            };
            const dqParts: Tensor[] = [];
            const perSegment = segs.map((s, i) => {
              const p = exp(sub(logits[i], lseG));
              const vs = blockRange(s.values, from, size, s.shift);
              const ks = blockRange(s.keys, from, size, s.shift);
              const dLogits = mul(p, sub(matMul(dO, vs, false, true), rowDot));
              const dS = mul(dLogits, beta);
              dqParts.push(matMul(dS, ks));
              const dKeys = groupTransposedProduct(dS, qg, s.keys.shape[0] === 1);
              const dValues = groupTransposedProduct(p, dO, s.values.shape[0] === 1);
              const dBias = s.bias ? [sumToShape(dLogits, groupShape(s.bias.shape, size))] : [];
              return [skip(dKeys, s), skip(dValues, s), ...dBias];
            });
            return [sumTensors(dqParts), ...perSegment.flat()];
          });
          dqs.push(grads[0]);
          let at = 1;
          segs.forEach((s, i) => {
            pieces[i].keys.push(grads[at++]);
            pieces[i].values.push(grads[at++]);
            if (s.bias) pieces[i].bias.push(grads[at++]);
          });
        }
        // A whole gradient from its pieces: summed when shared, else in block order with zeros
        // for the last `shift` blocks (read by no query block). Freed as soon as used: tfjs
        // keeps every gradient until tf.grads ends, so the peak is here.
        const assemble = (parts: Tensor[], shape: number[], shift: number): Tensor => {
          let whole: Tensor;
          if (shape[0] === 1 && shift === 0) {
            whole = sumTensors(parts);
          } else {
            const kept = parts.filter((x) => (x.shape[0] as number) > 0);
            if (shift > 0) kept.push(zeros([Math.min(shift, shape[0]), ...shape.slice(1)]));
            whole = kept.length === 1 ? kept[0] : concat(kept, 0);
            if (kept.length > 1) dispose(kept);
          }
          dispose(parts.filter((x) => x !== whole));
          return whole;
        };
        const result: (Tensor | null)[] = xsS.map(() => null);
        const accumulate = (index: number, g: Tensor) => {
          const sofar = result[index];
          result[index] = sofar === null ? g : add(sofar, g);
          if (sofar !== null) dispose([sofar, g]);
        };
        accumulate(0, assemble(dqs, xsS[0].shape, 0));
        segs.forEach((s, i) => {
          const r = refs[i];
          accumulate(r.keys, assemble(pieces[i].keys, s.keys.shape, r.shift));
          accumulate(r.values, assemble(pieces[i].values, s.values.shape, r.shift));
          if (s.bias) accumulate(r.bias, assemble(pieces[i].bias, s.bias.shape, 0));
        });
        return result as Tensor[];
      },
    };
  });
  return read(...inputs);
}

/** A bias shape restricted to a group of `size` blocks (a shared axis stays 1). */
function groupShape(shape: number[], size: number): number[] {
  return shape.map((n, i) => (i === 0 && n !== 1 ? size : n));
}

/**
 * `f()` as a constant of the backward pass (tfjs has no stopGradient): ops run inside a
 * customGrad's forward are not taped, and the customGrad's one input is a fresh scalar that no
 * gradient path reaches, so tf.grads neither visits it nor builds zero gradients for the tensors
 * `f` reads (passing them as inputs would cost a zero tensor and an add per input in the backward).
 */
export function constantOf(f: () => Tensor): Tensor {
  return customGrad((...args: (Tensor | GradSaveFunc)[]) => {
    const anchor = args[0] as Tensor;
    return { value: f(), gradFunc: () => [zerosLike(anchor)] };
  })(scalar(0));
}

/**
 * Σ parts, by `addN` over at most 6 tensors at a time: tfjs-backend-webgpu compiles one addN into
 * a shader with a storage buffer per input, and adapters may allow only 8 per stage.
 */
export function sumTensors(parts: Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  return tidy(() => {
    let sum = addN(parts.slice(0, 6));
    for (let i = 6; i < parts.length; i += 5) sum = addN([sum, ...parts.slice(i, i + 5)]);
    return sum;
  });
}
