// Key-Value Means attention as a composition of tfjs ops (the webgpu route), following
// @ovq/baselines' kvm engine (engine.ts, run.ts) step for step:
// - a JS loop over the evictions (one per block that leaves the window), each a few batched ops
//   over [batch·heads] on rows padded to their final count R: appends of the most novel tokens
//   and winner-take-all merges as one-hot matrix products, so that only the rows that change are
//   recomputed. The decisions are made once, untaped (they are constants of the backward), and
//   kept as three numbers per token; the keys' and the values' row versions are then two
//   customGrads (RowScan) whose backward is a hand-written reverse scan;
// - one read for all blocks (blockedSoftmaxRead): the queries of block X see the sinks, the rows
//   as they were when block X started (rows only change after a block's last read) and the raw
//   window, in one softmax over S + R + W logits, recomputed block group by block group in the
//   backward. Row counts depend on positions only, so every shape is known on the host.
// Memory: O(T·(S + W) + T/B·R·d) — the row versions, saved once per scan, and their gradients;
// no per-eviction intermediate outlives its step and there is never a T×T tensor.
// Exact ties (equal novelty, equal similarity) go to the lowest index as in the reference: they
// are resolved with max/min reductions and comparisons, never by topk/argMax, whose tie order
// differs between backends (webgpu's bitonic topk and shared-memory argMax). Near ties (a token
// almost equally close to two rows) are decided by rounding, in float32 and float64 alike.
import { budgetRows, createKvmState, type KvmConfig } from '@ovq/baselines';
import {
  add,
  addN,
  broadcastTo,
  cast,
  concat,
  customGrad,
  dispose,
  div,
  equal,
  type GradSaveFunc,
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
  unstack,
  where,
  zeros,
  zerosLike,
} from '@tensorflow/tfjs-core';
import { blockedSoftmaxRead, constantOf, l2Normalize, type ReadSegment } from './shared.js';

/** One eviction: tokens [first, first + m) leave the window; `add` of them become new rows. */
type Eviction = { first: number; m: number; add: number };

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
 * [N, R, dk] of which n0 exist, `added` of the tokens becoming rows n0, n0 + 1, …, packed per
 * token as [N, m, 3]: (row, appended, first). Appended token j goes to row n0 + rank_j (most novel
 * first); a merged token goes to its most similar row (rows after the appends); `first` marks the
 * first merged token of each row that receives merges. Untaped: the decisions are constants of
 * the backward, as in the reference.
 */
function decisionCode(ke: Tensor, K: Tensor, n0: number, added: number): Tensor {
  const [N, m] = ke.shape as number[];
  const R = K.shape[1] as number;
  const n1 = n0 + added;
  let rank: Tensor;
  let sims: Tensor | null = null;
  if (n0 === 0) {
    // No rows: every token is equally novel, so the lowest indices come first.
    rank = broadcastTo(reshape(iota(m), [1, 1, m]), [N, 1, m]);
  } else {
    sims = matMul(ke, slice(K, [0, 0, 0], [N, n0, -1]), false, true); // [N, m, n0]
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
    const simsNew = matMul(ke, matMul(slice(appended, [0, n0, 0], [N, added, m]), ke), false, true);
    sims = sims === null ? simsNew : concat([sims, simsNew], 2); // [N, m, n1]
  }
  const merged = reshape(cast(greaterEqual(rank, scalar(added)), 'float32'), [N, m, 1]);
  // Winner: the lowest row index among the most similar (old rows come first, so an appended
  // row wins only when strictly closer than every old row).
  const index = reshape(iota(n1), [1, 1, n1]);
  const s = sims as Tensor;
  const candidate = where(equal(s, max(s, -1, true)), index, scalar(n1));
  const A = mul(cast(equal(index, min(candidate, -1, true)), 'float32'), merged); // [N, m, n1]
  const G = matMul(A, A, false, true);
  const first = mul(cast(equal(sum(mul(G, earlier(m)), -1, true), scalar(0)), 'float32'), merged);
  const row = add(sum(mul(appended, rowIndex), 1), sum(mul(A, index), 2)); // [N, m]
  return stack([row, sum(appended, 1), reshape(first, [N, m])], 2);
}

/**
 * The one-hot matrices of a decision code [N, m, 3] (see decisionCode) over R rows:
 * - place [N, R, m]: appended token j → its row; At [N, R, m]: merged token j → its row (Aᵀ);
 * - AP [N, m, m] = A·place: the appended token that made merged token j's row, if any;
 * - G [N, m, m] = A·Aᵀ: merged tokens of the same row;
 * - rep [N, R, m]: each row that receives merges, from its first merged token;
 * - invCount [N, m, 1]: 1/(1 + tokens merged into token j's row).
 */
type Decisions = {
  place: Tensor;
  At: Tensor;
  AP: Tensor;
  G: Tensor;
  rep: Tensor;
  invCount: Tensor;
};

function expandDecisions(code: Tensor, R: number): Decisions {
  const [N, m] = code.shape as number[];
  const [row, appendedFlag, firstFlag] = unstack(code, 2).map((x) => reshape(x, [N, 1, m]));
  const mergedFlag = sub(scalar(1), appendedFlag);
  const onRow = cast(equal(row, reshape(iota(R), [1, R, 1])), 'float32'); // [N, R, m]
  const At = mul(onRow, mergedFlag);
  const column = (x: Tensor) => reshape(x, [N, m, 1]);
  const sameRow = cast(equal(column(row), row), 'float32'); // [N, m, m]
  const mergedAt = mul(sameRow, column(mergedFlag));
  const G = mul(mergedAt, mergedFlag);
  return {
    place: mul(onRow, appendedFlag),
    At,
    AP: mul(mergedAt, appendedFlag),
    G,
    rep: mul(At, firstFlag),
    invCount: div(scalar(1), add(sum(G, -1, true), scalar(1))),
  };
}

/** old + [place | rep] · [token; fresh − gathered]: the appends and the merged rows' differences. */
function updateRows(d: Decisions, old: Tensor, gathered: Tensor, token: Tensor, fresh: Tensor) {
  return add(old, matMul(concat([d.place, d.rep], 2), concat([token, sub(fresh, gathered)], 1)));
}

/** Token j's row before the merges (an old row or an appended token) and K + Σk before normalising. */
function mergeKeys(d: Decisions, K: Tensor, ke: Tensor) {
  const gathered = add(matMul(d.At, K, true, false), matMul(d.AP, ke));
  return { gathered, merged: add(gathered, matMul(d.G, ke)) };
}

/** One eviction of the keys: K ← normalise(K + Σk) for merged rows, appends as new rows. */
function evictKeys(d: Decisions, K: Tensor, ke: Tensor): Tensor {
  const { gathered, merged } = mergeKeys(d, K, ke);
  return updateRows(d, K, gathered, ke, l2Normalize(merged));
}

/** The values' gathered rows (Ug, ρG) and ρU + Σv before normalising. */
function mergeValues(
  d: Decisions,
  U: Tensor,
  rho: Tensor,
  ve: Tensor,
  vUnit: Tensor,
  vNorm: Tensor,
) {
  const Ug = add(matMul(d.At, U, true, false), matMul(d.AP, vUnit));
  const rhoG = add(matMul(d.At, rho, true, false), matMul(d.AP, vNorm));
  return { Ug, rhoG, merged: add(mul(rhoG, Ug), matMul(d.G, ve)) };
}

/** One eviction of the values: U ← normalise(ρU + Σv), ρ ← (ρ + Σ‖v‖)/(1 + m_i). */
function evictValues(
  d: Decisions,
  U: Tensor,
  rho: Tensor,
  ve: Tensor,
  vUnit: Tensor,
  vNorm: Tensor,
): [Tensor, Tensor] {
  const { Ug, rhoG, merged } = mergeValues(d, U, rho, ve, vUnit, vNorm);
  const rhoNew = mul(add(rhoG, matMul(d.G, vNorm)), d.invCount);
  return [
    updateRows(d, U, Ug, vUnit, l2Normalize(merged)),
    updateRows(d, rho, rhoG, vNorm, rhoNew),
  ];
}

/** The gradient of l2Normalize(x) = x · rsqrt(max(‖x‖², 1e-24)) for dy, as tfjs autodiff gives it. */
function l2NormalizeBackward(x: Tensor, dy: Tensor): Tensor {
  const s = sum(square(x), -1, true);
  const r = rsqrt(maximum(s, scalar(1e-24)));
  const through = cast(greaterEqual(s, scalar(1e-24)), 'float32'); // max passes s ≥ eps
  const r3 = mul(mul(r, r), r);
  return sub(mul(dy, r), mul(x, mul(mul(sum(mul(dy, x), -1, true), r3), through)));
}

/** Entry e [N, R, d] of versions stacked as [E + 1, N, R, d] (a contiguous slice). */
function versionAt(stacked: Tensor, e: number): Tensor {
  const [, N, R, d] = stacked.shape as number[];
  return reshape(slice(stacked, [e, 0, 0, 0], [1, -1, -1, -1]), [N, R, d]);
}

/**
 * The row versions the query blocks read, as two customGrads with a hand-written reverse scan
 * (tfjs autodiff would keep every intermediate of every eviction and its gradient until the
 * backward ends). The forwards save their inputs and the versions; each backward walks the
 * evictions backwards with one running gradient of the rows, recomputing each eviction's
 * intermediates from the saved version before it. Keys and values have separate scans: the
 * decisions are constants, so no gradient crosses between them.
 */
class RowScan {
  /** Offset and size of each eviction's tokens in the evicted span. */
  private readonly spans: { at: number; m: number }[] = [];
  /** For each version e (rows after e evictions), the query blocks [from, to) that read it. */
  private readonly readers: { from: number; to: number }[] = [];

  constructor(
    private readonly N: number,
    private readonly R: number,
    evictions: Eviction[],
    seenBy: number[],
  ) {
    let at = 0;
    for (const e of evictions) {
      this.spans.push({ at, m: e.m });
      at += e.m;
    }
    seenBy.forEach((e, X) => {
      if (this.readers[e] === undefined) this.readers[e] = { from: X, to: X };
      this.readers[e].to = X + 1;
    });
  }

  /** Eviction e's tokens of x [N, evicted tokens, d]. */
  private tokens(x: Tensor, e: number): Tensor {
    const { at, m } = this.spans[e];
    return slice(x, [0, at, 0], [this.N, m, -1]);
  }

  private decisions(code: Tensor, e: number): Decisions {
    return expandDecisions(this.tokens(code, e), this.R);
  }

  /** [nb, N, R, d] per query block (blocks first) from the versions [N, R, d]. */
  private perBlock(versions: Tensor[]): Tensor {
    return concat(
      this.readers.map((r, e) => {
        const [N, R, d] = versions[e].shape as number[];
        return broadcastTo(reshape(versions[e], [1, N, R, d]), [r.to - r.from, N, R, d]);
      }),
      0,
    );
  }

  /** The read gradient of version e: the sum over the query blocks that read it, [N, R, d]. */
  private readGradient(dy: Tensor, e: number): Tensor {
    const { from, to } = this.readers[e];
    return sum(slice(dy, [from, 0, 0, 0], [to - from, -1, -1, -1]), 0);
  }

  /** Version e [N, R, d] of a per-block tensor [nb, N, R, d]. */
  private version(perBlock: Tensor, e: number): Tensor {
    return versionAt(perBlock, this.readers[e].from);
  }

  /** The decision codes [N, evicted tokens, 3] of all evictions, from the evicted unit keys. */
  codes(ke: Tensor, evictions: Eviction[]): Tensor {
    return constantOf(() => {
      let K = zeros([this.N, this.R, ke.shape[2] as number]);
      let n0 = 0;
      const codes: Tensor[] = [];
      evictions.forEach((ev, e) => {
        const [code, next] = tidy(() => {
          const k = this.tokens(ke, e);
          const c = decisionCode(k, K, n0, ev.add);
          return [c, evictKeys(expandDecisions(c, this.R), K, k)];
        });
        codes.push(code);
        K.dispose();
        K = next;
        n0 += ev.add;
      });
      K.dispose();
      const all = concat(codes, 1);
      dispose(codes);
      return all;
    });
  }

  /** The keys each query block reads, [nb, N, R, dk], differentiable in ke. */
  keys(ke: Tensor, code: Tensor): Tensor {
    return customGrad((...args: (Tensor | GradSaveFunc)[]) => {
      const [k, c, save] = args as [Tensor, Tensor, GradSaveFunc];
      const versions = [zeros([this.N, this.R, k.shape[2] as number])];
      for (let e = 0; e < this.spans.length; e++) {
        const K = versions[e];
        versions.push(tidy(() => evictKeys(this.decisions(c, e), K, this.tokens(k, e))));
      }
      const read = tidy(() => this.perBlock(versions));
      dispose(versions);
      save([k, c, read]);
      return {
        value: read,
        gradFunc: (dy: Tensor, saved: Tensor[]) => {
          const [kS, cS, readS] = saved;
          let g = this.readGradient(dy, this.spans.length);
          const dKe: Tensor[] = [];
          for (let e = this.spans.length - 1; e >= 0; e--) {
            const [dk, next] = tidy(() => {
              const d = this.decisions(cS, e);
              const k = this.tokens(kS, e);
              const { merged } = mergeKeys(d, this.version(readS, e), k);
              const dFresh = matMul(d.rep, g, true, false);
              const dMerged = l2NormalizeBackward(merged, dFresh);
              const dGathered = sub(dMerged, dFresh);
              const dk = addN([
                matMul(d.place, g, true, false),
                matMul(d.AP, dGathered, true, false),
                matMul(d.G, dMerged, true, false),
              ]);
              const previous = addN([g, matMul(d.At, dGathered), this.readGradient(dy, e)]);
              return [dk, previous];
            });
            dKe.push(dk);
            g.dispose();
            g = next;
          }
          g.dispose();
          const dK = concat(dKe.reverse(), 1);
          dispose(dKe);
          return [dK, zerosLike(cS)];
        },
      };
    })(ke, code);
  }

  /** The values (ρU) each query block reads, [nb, N, R, dv], differentiable in ve, vUnit, vNorm. */
  values(ve: Tensor, vUnit: Tensor, vNorm: Tensor, code: Tensor): Tensor {
    return customGrad((...args: (Tensor | GradSaveFunc)[]) => {
      const [v, vu, vn, c, save] = args as [Tensor, Tensor, Tensor, Tensor, GradSaveFunc];
      const dv = v.shape[2] as number;
      const Us = [zeros([this.N, this.R, dv])];
      const rhos = [zeros([this.N, this.R, 1])];
      for (let e = 0; e < this.spans.length; e++) {
        const [U, rho] = [Us[e], rhos[e]];
        const next = tidy(() => {
          const at = (x: Tensor) => this.tokens(x, e);
          return evictValues(this.decisions(c, e), U, rho, at(v), at(vu), at(vn));
        });
        Us.push(next[0]);
        rhos.push(next[1]);
      }
      const read = tidy(() => this.perBlock(Us.map((U, e) => mul(rhos[e], U))));
      // The versions themselves (one per eviction, fewer than the blocks) for the backward.
      const UsSaved = stack(Us);
      const rhosSaved = stack(rhos);
      dispose([...Us, ...rhos]);
      save([v, vu, vn, c, UsSaved, rhosSaved]);
      return {
        value: read,
        gradFunc: (dy: Tensor, saved: Tensor[]) => {
          const [vS, vuS, vnS, cS, UsS, rhosS] = saved;
          const E = this.spans.length;
          // dy into version e's U and ρ: read = ρ ∘ U.
          const fromRead = (e: number): [Tensor, Tensor] =>
            tidy(() => {
              const dRead = this.readGradient(dy, e);
              return [
                mul(dRead, versionAt(rhosS, e)),
                sum(mul(dRead, versionAt(UsS, e)), -1, true),
              ];
            });
          let [g, h] = fromRead(E);
          const pieces: Tensor[][] = [];
          for (let e = E - 1; e >= 0; e--) {
            const out = tidy(() => {
              const d = this.decisions(cS, e);
              const at = (x: Tensor) => this.tokens(x, e);
              const U = versionAt(UsS, e);
              const rho = versionAt(rhosS, e);
              const r = mergeValues(d, U, rho, at(vS), at(vuS), at(vnS));
              const dFreshU = matMul(d.rep, g, true, false);
              const dMergedU = l2NormalizeBackward(r.merged, dFreshU);
              const dUg = sub(mul(dMergedU, r.rhoG), dFreshU);
              const dRhoNew = mul(matMul(d.rep, h, true, false), d.invCount);
              const dRhoG = add(
                sub(dRhoNew, matMul(d.rep, h, true, false)),
                sum(mul(dMergedU, r.Ug), -1, true),
              );
              const dVe = matMul(d.G, dMergedU, true, false);
              const dVUnit = add(matMul(d.place, g, true, false), matMul(d.AP, dUg, true, false));
              const dVNorm = addN([
                matMul(d.place, h, true, false),
                matMul(d.AP, dRhoG, true, false),
                matMul(d.G, dRhoNew, true, false),
              ]);
              const [readU, readRho] = fromRead(e);
              return [
                dVe,
                dVUnit,
                dVNorm,
                addN([g, matMul(d.At, dUg), readU]),
                addN([h, matMul(d.At, dRhoG), readRho]),
              ];
            });
            pieces.push(out.slice(0, 3));
            dispose([g, h]);
            [g, h] = [out[3], out[4]];
          }
          dispose([g, h]);
          pieces.reverse();
          const grads = [0, 1, 2].map((i) =>
            concat(
              pieces.map((p) => p[i]),
              1,
            ),
          );
          dispose(pieces.flat());
          return [...grads, zerosLike(cS)];
        },
      };
    })(ve, vUnit, vNorm, code);
  }
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
    // Rows after e evictions: counts[e] of them, all padded to the final count nMax.
    const nMax = evictions.reduce((n, e) => n + e.add, 0);
    const counts = [0];
    for (const e of evictions) counts.push(counts[counts.length - 1] + e.add);
    // Queries and keys/values in whole blocks, blocks first as the read takes them (the padding
    // is masked or sliced off).
    const inBlocks = (x: Tensor) =>
      transpose(reshape(padAxis1(x, 0, Tp - T), [N, nb, B, x.shape[2] as number]), [1, 0, 2, 3]);
    const qb = inBlocks(qn);
    const kb = inBlocks(kn);
    const vb = inBlocks(vf);
    /** [nb, 1, rows, cols] additive constant: 0 where `visible(X, i, j)`, −∞ elsewhere. */
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
      return tensor4d(m, [nb, 1, rows, cols]);
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
      const sinks = (x: Tensor) => reshape(slice(x, [0, 0, 0], [N, S, -1]), [1, N, S, -1]);
      const bias = biasOf(B, S, (X, i, j) => j <= X * B + i);
      segments.push({ keys: sinks(kn), values: sinks(vf), bias });
    }
    if (nMax > 0) {
      // The evicted tokens are consecutive: one slice each of keys and values.
      const start = evictions[0].first;
      const span = evictions.reduce((n, e) => n + e.m, 0);
      const ke = slice(kn, [0, start, 0], [N, span, dk]);
      const ve = slice(vf, [0, start, 0], [N, span, dv]);
      // ‖v‖ and v/max(‖v‖, eps) with a gradient that stays finite at v = 0 (NORM_EPS = 1e-12).
      const vsq = sum(square(ve), -1, true);
      const inv = rsqrt(maximum(vsq, scalar(1e-24)));
      const scan = new RowScan(N, nMax, evictions, seenBy);
      const code = scan.codes(ke, evictions);
      // Each query block reads the rows as of its start (rows ≥ their count are hidden).
      segments.push({
        keys: scan.keys(ke, code),
        values: scan.values(ve, mul(ve, inv), mul(vsq, inv), code),
        bias: biasOf(1, nMax, (X, _, r) => r < counts[seenBy[X]]),
      });
    }
    const y = transpose(blockedSoftmaxRead(qb, segments, c.beta), [1, 0, 2, 3]);
    const out = slice(reshape(y, [N, Tp, dv]), [0, 0, 0], [N, T, dv]);
    return reshape(out, [Bt, H, T, dv]) as Tensor4D;
  });
}
