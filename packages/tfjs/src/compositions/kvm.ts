// Key-Value Means attention as a composition of tfjs ops (the webgpu route), following
// @ovq/baselines' kvm engine (engine.ts, run.ts) step for step:
// - a JS loop over the evictions (one per block that leaves the window), each a few batched ops
//   over [batch·heads] on rows padded to their final count R: appends of the most novel tokens
//   and winner-take-all merges as one-hot matrix products, so that every discrete decision is a
//   constant of the backward and only the rows that change are recomputed;
// - one batched read for all blocks: the queries of block X see the sinks, the rows as they were
//   when block X started (rows only change after a block's last read) and the raw window, all in
//   one softmax over S + R + W logits. Row counts depend on positions only, so every shape is
//   known on the host.
// Memory: O(T·(S + R + W)) for the read plus O(T/B·R·d) for the row versions (and, in the
// backward, their gradients: tfjs keeps every intermediate gradient until it ends); never T×T.
// Exact ties (equal novelty, equal similarity) go to the lowest index as in the reference: they
// are resolved with max/min reductions and comparisons, never by topk/argMax, whose tie order
// differs between backends (webgpu's bitonic topk and shared-memory argMax). Near ties (a token
// almost equally close to two rows) are decided by rounding, in float32 and float64 alike.
import { budgetRows, createKvmState, type KvmConfig } from '@ovq/baselines';
import {
  add,
  broadcastTo,
  cast,
  concat,
  div,
  equal,
  greater,
  greaterEqual,
  less,
  matMul,
  max,
  maximum,
  min,
  mul,
  neg,
  pad,
  reshape,
  rsqrt,
  scalar,
  slice,
  split,
  square,
  stack,
  sub,
  sum,
  type Tensor,
  type Tensor4D,
  tensor1d,
  tensor2d,
  tensor4d,
  tidy,
  transpose,
  where,
  zeros,
} from '@tensorflow/tfjs-core';
import { blockedSoftmaxRead, constantOf, l2Normalize, type ReadSegment } from './shared.js';

/** One eviction: tokens [first, first + m) leave the window; `add` of them become new rows. */
type Eviction = { first: number; m: number; add: number };

/** Rows K [N, R, dk], U [N, R, dv], ρ [N, R, 1], all R = final row count (unused rows are 0). */
type Rows = { K: Tensor; U: Tensor; rho: Tensor };

/**
 * The evictions whose rows some query reads (run.ts: block X leaves after the read of the last
 * token of block X + W/B − 1) and, per block of queries, how many evictions it sees.
 */
function schedule(
  T: number,
  c: { window: number; blockSize: number; sinks: number; budget: KvmConfig['budget'] },
) {
  const B = c.blockSize;
  const lag = c.window / B;
  const queryBlocks = Math.ceil(T / B);
  const evictions: Eviction[] = [];
  const seenBy: number[] = []; // evictions before the reads of each query block
  let tau = 0;
  let rows = 0;
  for (let X = 0; X < queryBlocks; X++) {
    // Block X − lag left after the last read of block X − 1.
    const leaving = X - lag;
    if (leaving >= 0) {
      const first = Math.max(leaving * B, c.sinks);
      const m = Math.max(0, (leaving + 1) * B - first);
      if (m > 0) {
        tau += m;
        const add = Math.min(m, Math.max(0, budgetRows(c.budget, tau) - rows));
        evictions.push({ first, m, add });
        rows += add;
      }
    }
    seenBy.push(evictions.length);
  }
  return { evictions, seenBy, queryBlocks };
}

/** The constant 0, 1, …, n − 1 (float: index arithmetic stays exact). */
function iota(n: number): Tensor {
  return tensor1d(Float32Array.from({ length: n }, (_, i) => i));
}

/** [m, m] constant: 1 where column < row (an earlier token). */
function earlier(m: number): Tensor {
  return tensor2d(
    Float32Array.from({ length: m * m }, (_, x) => (x % m < Math.floor(x / m) ? 1 : 0)),
    [m, m],
  );
}

/**
 * The discrete decisions of one eviction of m tokens (unit keys ke [N, m, dk]) into rows K
 * [N, R, dk] of which n0 exist, `added` of the tokens becoming rows n0, n0 + 1, …:
 * - place [N, R, m]: appended token j goes to row n0 + rank_j (most novel first);
 * - A [N, m, R]: merged token j goes to its most similar row (rows after the appends);
 * - AP [N, m, m] = A·place: the appended token that made token j's row, if any;
 * - G [N, m, m] = A·Aᵀ: tokens merged into the same row;
 * - rep [N, R, m]: each row that receives merges, from its first merged token (one per row);
 * - invCount [N, m, 1]: 1/(1 + tokens merged into token j's row).
 * Computed by `constantOf` (no comparison op on the tape, no gradient at all): the decisions
 * are constants of the backward, as in the reference.
 */
function decisions(ke: Tensor, K: Tensor, n0: number, added: number): Tensor[] {
  const [N, m] = ke.shape as number[];
  const R = K.shape[1] as number;
  const n1 = n0 + added;
  const packedDecisions = (k: Tensor, Kall: Tensor): Tensor => {
    let rank: Tensor;
    let sims: Tensor | null = null;
    if (n0 === 0) {
      // No rows: every token is equally novel, so the lowest indices come first.
      rank = broadcastTo(reshape(iota(m), [1, 1, m]), [N, 1, m]);
    } else {
      sims = matMul(k, slice(Kall, [0, 0, 0], [N, n0, -1]), false, true); // [N, m, n0]
      // Novelty 1 − max cosine ranks like −max cosine (negation is exact in float32).
      const novelty = neg(max(sims, -1));
      const other = reshape(novelty, [N, 1, m]);
      const self = reshape(novelty, [N, m, 1]);
      // rank_j = #{i: novelty_i > novelty_j} + #{i < j: novelty_i = novelty_j}
      const ahead = add(
        cast(greater(other, self), 'float32'),
        mul(cast(equal(other, self), 'float32'), earlier(m)),
      );
      rank = reshape(sum(ahead, -1), [N, 1, m]);
    }
    const rowIndex = reshape(iota(R), [1, R, 1]);
    const place = cast(equal(add(rank, scalar(n0)), rowIndex), 'float32');
    const appended = mul(place, cast(less(rowIndex, scalar(n1)), 'float32')); // [N, R, m]
    if (added > 0) {
      const simsNew = matMul(k, matMul(slice(appended, [0, n0, 0], [N, added, m]), k), false, true);
      sims = sims === null ? simsNew : concat([sims, simsNew], 2); // [N, m, n1]
    }
    const merged = reshape(cast(greaterEqual(rank, scalar(added)), 'float32'), [N, m, 1]);
    // Winner: the lowest row index among the most similar (old rows come first, so an appended
    // row wins only when strictly closer than every old row).
    const index = reshape(iota(n1), [1, 1, n1]);
    const s = sims as Tensor;
    const candidate = where(equal(s, max(s, -1, true)), index, scalar(n1));
    const A1 = mul(cast(equal(index, min(candidate, -1, true)), 'float32'), merged); // [N, m, n1]
    const A = n1 === R ? A1 : concat([A1, zeros([N, m, R - n1])], 2);
    const G = matMul(A, A, false, true);
    const first = mul(cast(equal(sum(mul(G, earlier(m)), -1, true), scalar(0)), 'float32'), merged);
    const parts = [
      appended,
      A,
      matMul(A, appended),
      G,
      transpose(mul(A, first), [0, 2, 1]),
      div(scalar(1), add(sum(G, -1, true), scalar(1))),
    ];
    // customGrad returns one tensor: the decisions travel packed along axis 1.
    return concat(
      parts.map((x) => reshape(x, [N, -1])),
      1,
    );
  };
  // The save function comes last in customGrad's arguments.
  const packed = constantOf(() => packedDecisions(ke, K));
  const shapes = [
    [R, m],
    [m, R],
    [m, m],
    [m, m],
    [R, m],
    [m, 1],
  ];
  return split(
    packed,
    shapes.map(([a, b]) => a * b),
    1,
  ).map((x, i) => reshape(x, [N, ...shapes[i]]));
}

/**
 * One eviction (engine.ts evictTokens), differentiable in ke, ve and the rows. Only the rows that
 * change are computed: each merged token gathers its row (one-hot products) and the row's new
 * value is scattered back once, by the row's first merged token, as a difference.
 */
function evict(rows: Rows, ke: Tensor, ve: Tensor, n0: number, added: number): Rows {
  // ‖v‖ and v/max(‖v‖, eps) with a gradient that stays finite at v = 0 (NORM_EPS = 1e-12).
  const vsq = sum(square(ve), -1, true);
  const inv = rsqrt(maximum(vsq, scalar(1e-24)));
  const vNorm = mul(vsq, inv); // [N, m, 1]
  const vUnit = mul(ve, inv);
  const [place, A, AP, G, rep, invCount] = decisions(ke, rows.K, n0, added);
  // Token j's row before the merges: an old row or an appended token.
  const rowOf = (x: Tensor, token: Tensor) => add(matMul(A, x), matMul(AP, token));
  const Kg = rowOf(rows.K, ke);
  const Ug = rowOf(rows.U, vUnit);
  const rhoG = rowOf(rows.rho, vNorm);
  // K ← normalise(K + Σk), U ← normalise(ρU + Σv), ρ ← (ρ + Σ‖v‖)/(1 + m_i).
  const Knew = l2Normalize(add(Kg, matMul(G, ke)));
  const Unew = l2Normalize(add(mul(rhoG, Ug), matMul(G, ve)));
  const rhoNew = mul(add(rhoG, matMul(G, vNorm)), invCount);
  // Appends and merge differences in one product: [place | rep] · [token; new − old].
  const update = (old: Tensor, x: Tensor, token: Tensor, fresh: Tensor) =>
    add(old, matMul(concat([place, rep], 2), concat([token, sub(fresh, x)], 1)));
  return {
    K: update(rows.K, Kg, ke, Knew),
    U: update(rows.U, Ug, vUnit, Unew),
    rho: update(rows.rho, rhoG, vNorm, rhoNew),
  };
}

/** Zeros before and after the rows of axis 1 of a [N, n, d] tensor. */
function padAxis1(x: Tensor, before: number, after: number): Tensor {
  return before === 0 && after === 0
    ? x
    : pad(x, [
        [0, 0],
        [before, after],
        [0, 0],
      ]);
}

export function kvmComposite(q: Tensor, k: Tensor, v: Tensor, config: KvmConfig): Tensor4D {
  const [Bt, H, T, dk] = q.shape as number[];
  const dv = v.shape[3] as number;
  // The same validation (and errors) as the host kernel.
  const c = createKvmState({ keyDim: dk, valueDim: dv }, config).config;
  const B = c.blockSize;
  const lag = c.window / B;
  const { evictions, seenBy, queryBlocks: nb } = schedule(T, c);
  const N = Bt * H;
  const Tp = nb * B;
  const S = Math.min(c.sinks, T);
  return tidy(() => {
    const qn = reshape(l2Normalize(q), [N, T, dk]);
    const kn = reshape(l2Normalize(k), [N, T, dk]);
    const vf = reshape(v, [N, T, dv]);
    // Row versions: states[e] = rows after e evictions, all padded to the final count nMax.
    const nMax = evictions.reduce((n, e) => n + e.add, 0);
    const counts = [0];
    const states: Rows[] = [
      { K: zeros([N, nMax, dk]), U: zeros([N, nMax, dv]), rho: zeros([N, nMax, 1]) },
    ];
    // The evicted tokens are consecutive: one split (its gradient is one concat; a slice per
    // eviction would pad its gradient to [N, T, d] each time).
    const evicted = (x: Tensor): Tensor[] => {
      if (evictions.length === 0) return [];
      const start = evictions[0].first;
      const end = start + evictions.reduce((n, e) => n + e.m, 0);
      const sizes = [start, ...evictions.map((e) => e.m), T - end];
      return split(x, sizes, 1).slice(1, -1);
    };
    const kEvicted = evicted(kn);
    const vEvicted = evicted(vf);
    for (const [i, e] of evictions.entries()) {
      const n0 = counts[counts.length - 1];
      states.push(evict(states[states.length - 1], kEvicted[i], vEvicted[i], n0, e.add));
      counts.push(n0 + e.add);
    }
    // Queries and keys/values in whole blocks (the padding is masked or sliced off).
    const inBlocks = (x: Tensor) =>
      reshape(padAxis1(x, 0, Tp - T), [N, nb, B, x.shape[2] as number]);
    const qb = inBlocks(qn);
    const kb = inBlocks(kn);
    const vb = inBlocks(vf);
    /** [1, nb, rows, cols] additive constant: 0 where `visible(X, i, j)`, −∞ elsewhere. */
    const biasOf = (
      rows: number,
      cols: number,
      visible: (X: number, i: number, j: number) => boolean,
    ) => {
      const m = new Float32Array(nb * rows * cols).fill(Number.NEGATIVE_INFINITY);
      for (let X = 0; X < nb; X++) {
        for (let i = 0; i < rows; i++) {
          for (let j = 0; j < cols; j++) if (visible(X, i, j)) m[(X * rows + i) * cols + j] = 0;
        }
      }
      return tensor4d(m, [1, nb, rows, cols]);
    };
    // The raw window of block X: blocks X − lag + 1 … X, tokens S ≤ s ≤ t (one segment per block).
    const segments: ReadSegment[] = [];
    for (let shift = 0; shift < lag; shift++) {
      const bias = biasOf(B, B, (X, i, j) => {
        const s = (X - shift) * B + j;
        return X >= shift && s >= c.sinks && s <= X * B + i;
      });
      segments.push({ keys: kb, values: vb, bias, shift });
    }
    if (S > 0) {
      // Sinks s ≤ t, shared by every block.
      const sinks = (x: Tensor) => reshape(slice(x, [0, 0, 0], [N, S, -1]), [N, 1, S, -1]);
      const bias = biasOf(B, S, (X, i, j) => j <= X * B + i);
      segments.push({ keys: sinks(kn), values: sinks(vf), bias });
    }
    if (nMax > 0) {
      // Each query block reads the rows as of its start (rows ≥ their count are hidden).
      const values = states.map((r) => mul(r.rho, r.U));
      segments.push({
        keys: stack(
          seenBy.map((e) => states[e].K),
          1,
        ),
        values: stack(
          seenBy.map((e) => values[e]),
          1,
        ),
        bias: biasOf(1, nMax, (X, _, r) => r < counts[seenBy[X]]),
      });
    }
    const y = blockedSoftmaxRead(qb, segments, c.beta);
    const out = slice(reshape(y, [N, Tp, dv]), [0, 0, 0], [N, T, dv]);
    return reshape(out, [Bt, H, T, dv]) as Tensor4D;
  });
}
