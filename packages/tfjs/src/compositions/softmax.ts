// Softmax / sliding-window attention as a composition of tfjs ops (the webgpu route), written in
// the memory-efficient form of flash attention: queries are taken in blocks of SOFTMAX_BLOCK rows,
// each against the slab of keys it can see (all earlier keys, or the window band), so no
// [batch, heads, seqLen, seqLen] matrix exists. A customGrad saves only the output and the
// per-row log-sum-exp; its backward recomputes each block's probabilities from q, k and the lse.
// Peak memory is O(seqLen · SOFTMAX_BLOCK) per [batch, head] in both passes. RoPE and the L2
// normalisation are plain ops around it (tfjs autodiff).
import { resolveSoftmaxConfig, type SoftmaxConfig } from '@ovq/baselines';
import {
  add,
  concat,
  customGrad,
  dispose,
  div,
  exp,
  type GradSaveFunc,
  log,
  matMul,
  max,
  mul,
  pad,
  slice,
  sub,
  sum,
  type Tensor,
  type Tensor4D,
  tidy,
  zerosLike,
} from '@tensorflow/tfjs-core';
import { bandBias, l2Normalize, rope } from './shared.js';

/** Query rows per block: a block's scores are [batch, heads, SOFTMAX_BLOCK, visible keys]. */
export const SOFTMAX_BLOCK = 64;

export function softmaxComposite(q: Tensor, k: Tensor, v: Tensor, config: SoftmaxConfig): Tensor4D {
  const c = resolveSoftmaxConfig(config, q.shape[3] as number);
  return tidy(() => {
    let qp = c.normalize ? l2Normalize(q) : q;
    let kp = c.normalize ? l2Normalize(k) : k;
    if (c.rope) {
      qp = rope(qp, c.rope.base);
      kp = rope(kp, c.rope.base);
    }
    return blockedAttention(c.beta, c.window ?? Number.POSITIVE_INFINITY)(qp, kp, v) as Tensor4D;
  });
}

/** One query block [start, end) and the key slab [lo, end) it sees. */
type Block = { start: number; end: number; lo: number };

function blocksOf(seqLen: number, window: number): Block[] {
  const blocks: Block[] = [];
  for (let start = 0; start < seqLen; start += SOFTMAX_BLOCK) {
    const end = Math.min(seqLen, start + SOFTMAX_BLOCK);
    blocks.push({ start, end, lo: Math.max(0, start - window + 1) });
  }
  return blocks;
}

/** Rows [from, to) of x [B, H, T, d] along the time axis. */
function rows(x: Tensor, from: number, to: number): Tensor {
  const [B, H, , d] = x.shape as number[];
  return slice(x, [0, 0, from, 0], [B, H, to - from, d]);
}

/** β q kᵀ of block b's queries and key slab, invisible keys at −∞: [B, H, block rows, slab keys]. */
function blockLogits(qBlock: Tensor, kSlab: Tensor, b: Block, beta: number, window: number) {
  const scores = mul(matMul(qBlock, kSlab, false, true), beta);
  // An offset t − s never exceeds b.end, so an unbounded window is clipped there (int32 mask).
  const bias = bandBias(b.start, b.end - b.start, b.lo, b.end - b.lo, Math.min(window, b.end));
  return add(scores, bias);
}

/** The attention core on processed q, k: (q, k, v) → output, with a recomputing backward. */
function blockedAttention(beta: number, window: number) {
  return customGrad((...args: (Tensor | GradSaveFunc)[]) => {
    const [q, k, v, save] = args as [Tensor, Tensor, Tensor, GradSaveFunc];
    const T = q.shape[2] as number;
    const blocks = blocksOf(T, window);
    const outs: Tensor[] = [];
    const lses: Tensor[] = [];
    for (const b of blocks) {
      const [o, lse] = tidy(() => {
        const logits = blockLogits(rows(q, b.start, b.end), rows(k, b.lo, b.end), b, beta, window);
        // Each row sees its own key, so its max is finite.
        const m = max(logits, -1, true);
        const p = exp(sub(logits, m));
        const l = sum(p, -1, true);
        return [div(matMul(p, rows(v, b.lo, b.end)), l), add(m, log(l))];
      });
      outs.push(o);
      lses.push(lse);
    }
    const out = concat(outs, 2);
    const lse = concat(lses, 2);
    dispose([...outs, ...lses]);
    save([q, k, v, out, lse]);
    return {
      value: out,
      gradFunc: (dy: Tensor, saved: Tensor[]) => {
        const [qs, ks, vs, os, lseS] = saved;
        // D_t = Σ_j dO_tj O_tj, so that dS = P ∘ (dP − D).
        const rowDot = sum(mul(dy, os), -1, true);
        const dqs: Tensor[] = [];
        let dK = zerosLike(ks);
        let dV = zerosLike(vs);
        for (const b of blocks) {
          const [dq, nextDK, nextDV] = tidy(() => {
            const qBlock = rows(qs, b.start, b.end);
            const kSlab = rows(ks, b.lo, b.end);
            const logits = blockLogits(qBlock, kSlab, b, beta, window);
            const p = exp(sub(logits, rows(lseS, b.start, b.end)));
            const dO = rows(dy, b.start, b.end);
            const dP = matMul(dO, rows(vs, b.lo, b.end), false, true);
            const dS = mul(mul(p, sub(dP, rows(rowDot, b.start, b.end))), beta);
            // Key-side gradients cover the slab [lo, end); pad them to the full time axis.
            const around: [number, number] = [b.lo, T - b.end];
            const dKSlab = matMul(dS, qBlock, true, false);
            const dVSlab = matMul(p, dO, true, false);
            return [
              matMul(dS, kSlab),
              add(dK, pad(dKSlab, [[0, 0], [0, 0], around, [0, 0]])),
              add(dV, pad(dVSlab, [[0, 0], [0, 0], around, [0, 0]])),
            ];
          });
          dqs.push(dq);
          dispose([dK, dV]);
          dK = nextDK;
          dV = nextDV;
        }
        const dQ = concat(dqs, 2);
        dispose([...dqs, rowDot]);
        return [dQ, dK, dV];
      },
    };
  });
}
