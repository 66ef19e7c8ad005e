// Gated DeltaNet as a composition of tfjs ops (the webgpu route); tfjs autodiff gives its gradient.
// Chunked UT/WY form (Yang et al. 2025): inside a chunk of C tokens the pseudo-values solve the
// unit-lower-triangular system (I + A) u = β(v − γ S_0ᵀk̂), A_ts = β_t (γ_t/γ_s) k̂_t·k̂_s (s < t),
// γ = cumulative α. Everything inside chunks runs batched over all chunks at once ([…, C, C]
// matrices); only the state hand-over between chunks is a loop (one matMul per chunk). Memory is
// O(T·C + chunks·dk·dv) per [batch, head], never T×T.
import { createGatedDeltaNetState, type GatedDeltaNetConfig } from '@ovq/baselines';
import {
  add,
  cast,
  concat,
  exp,
  expandDims,
  eye,
  log,
  matMul,
  mul,
  neg,
  ones,
  pad,
  reshape,
  scalar,
  slice,
  split,
  stack,
  sub,
  type Tensor,
  type Tensor4D,
  tidy,
  unstack,
  where,
  zeros,
  zerosLike,
} from '@tensorflow/tfjs-core';
import { causalMask, cumsumAlong, l2Normalize } from './shared.js';

/** Default chunk length (a power of two, as in @ovq/baselines' chunked fast path). */
export const GDN_COMPOSITE_CHUNK = 64;

/**
 * S_t = α_t (I − β_t k̂_t k̂_tᵀ) S_{t−1} + β_t k̂_t v_tᵀ, y_t = scale·S_tᵀ q̂_t (q̂, k̂ unit rows);
 * q, k [B, H, T, dk], v [B, H, T, dv], alpha, beta [B, H, T]. `chunkSize` (a power of two) is
 * capped at the next power of two ≥ T; T is padded up to a multiple of it with no-op tokens.
 */
export function gatedDeltaNetComposite(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  alpha: Tensor,
  beta: Tensor,
  config: GatedDeltaNetConfig,
  chunkSize = GDN_COMPOSITE_CHUNK,
): Tensor4D {
  const [B, H, T, dk] = q.shape as number[];
  const dv = v.shape[3] as number;
  // Same validation (and default scale) as the host kernel, so a bad config fails alike everywhere.
  const { scale } = createGatedDeltaNetState({ keyDim: dk, valueDim: dv }, config).config;
  if (!Number.isInteger(Math.log2(chunkSize))) {
    throw new Error(`gatedDeltaNetComposite: chunkSize is ${chunkSize}; expected a power of two`);
  }
  const C = Math.min(chunkSize, 2 ** Math.ceil(Math.log2(Math.max(T, 1))));
  const n = Math.ceil(T / C);
  const padT = n * C - T;
  const BH = B * H;
  const M = BH * n; // one row of the batched intra-chunk work per (batch, head, chunk)
  return tidy(() => {
    // Padded tokens have k̂ = 0, β = 0 and ln α = 0: they write nothing and decay nothing.
    const padTokens = (x: Tensor) =>
      padT === 0
        ? x
        : pad(
            x,
            x.shape.map((_, i): [number, number] => (i === 2 ? [0, padT] : [0, 0])),
          );
    const Q = reshape(padTokens(l2Normalize(q)), [M, C, dk]);
    const K = reshape(padTokens(l2Normalize(k)), [M, C, dk]);
    const V = reshape(padTokens(v), [M, C, dv]);
    const bet = reshape(padTokens(beta), [M, C]);
    // b_t = Σ_{j ≤ t} ln α_j within the chunk, γ_t/γ_s = exp(b_t − b_s).
    const mask = causalMask(C, C);
    const b = cumsumAlong(reshape(padTokens(log(alpha)), [M, C]), 1);

    const inv = unitLowerInverse(K, bet, b, C);
    const gammaCol = expandDims(exp(b), 2);
    const betaCol = expandDims(bet, 2);
    // u = U0 − W S_0 with U0 = (I + A)⁻¹ diag(β) V and W = (I + A)⁻¹ diag(βγ) K.
    const U0 = matMul(inv, mul(betaCol, V));
    const W = matMul(inv, mul(mul(betaCol, gammaCol), K));
    // Causal in-chunk scores q̂_t·k̂_s γ_t/γ_s (s ≤ t); masked to −∞ before the exp so that
    // entries s > t neither overflow nor pass a gradient.
    const diff = sub(expandDims(b, 2), expandDims(b, 1));
    const P = mul(
      matMul(Q, K, false, true),
      exp(where(cast(mask, 'bool'), diff, scalar(Number.NEGATIVE_INFINITY))),
    );
    // y = scale (P U0 + (γQ − P W) S_0): the part of each chunk's output that reads S_0.
    const yLocal = matMul(P, U0);
    const qRead = sub(mul(gammaCol, Q), matMul(P, W));
    // S_end = (γ_C I − K̃ᵀW) S_0 + K̃ᵀU0 with K̃_s = (γ_C/γ_s) k̂_s.
    const bLast = slice(b, [0, C - 1], [M, 1]);
    const Kd = mul(expandDims(exp(sub(bLast, b)), 2), K);
    const transition = sub(mul(expandDims(exp(bLast), 2), eye(dk)), matMul(Kd, W, true, false));
    const written = matMul(Kd, U0, true, false);

    // The only sequential part: S_0 of chunk c + 1 from S_0 of chunk c.
    const transitions = unstack(reshape(transition, [BH, n, dk, dk]), 1);
    const writes = unstack(reshape(written, [BH, n, dk, dv]), 1);
    const starts: Tensor[] = [zeros([BH, dk, dv])];
    for (let c = 1; c < n; c++) {
      starts.push(add(matMul(transitions[c - 1], starts[c - 1]), writes[c - 1]));
    }
    const S = stack(starts, 1); // [BH, n, dk, dv]
    const y = add(reshape(yLocal, [BH, n, C, dv]), matMul(reshape(qRead, [BH, n, C, dk]), S));
    const out = mul(reshape(y, [B, H, n * C, dv]), scalar(scale));
    return (padT === 0 ? out : slice(out, [0, 0, 0, 0], [B, H, T, dv])) as Tensor4D;
  });
}

/**
 * (I + A)⁻¹ for the unit-lower-triangular A_ts = β_t exp(b_t − b_s) k̂_t·k̂_s (s < t), batched over
 * rows of K [M, C, dk]: recursive block inversion, doubling the diagonal blocks each level,
 * [[X, 0], [Z, Y]]⁻¹ = [[X⁻¹, 0], [−Y⁻¹ Z X⁻¹, Y⁻¹]]. Every intermediate is a block of the
 * inverse itself, so it stays as well-conditioned as forward substitution (a Neumann-series
 * product Π(I + N^{2^j}) does not: its partial sums grow binomially for correlated keys).
 */
function unitLowerInverse(K: Tensor, beta: Tensor, b: Tensor, C: number): Tensor {
  const [M, , dk] = K.shape as number[];
  let blocks: Tensor = ones([M, C, 1, 1]); // the diagonal blocks of the inverse, m × m each
  for (let m = 1; m < C; m *= 2) {
    const pairs = C / (2 * m);
    // Tokens of pair p: first half X (rows p·2m … p·2m+m−1), second half Y.
    const [kx, ky] = split(reshape(K, [M, pairs, 2, m, dk]), 2, 2).map((t) =>
      reshape(t, [M, pairs, m, dk]),
    );
    const [bx, by] = split(reshape(b, [M, pairs, 2, m]), 2, 2).map((t) =>
      reshape(t, [M, pairs, m]),
    );
    const betaY = reshape(split(reshape(beta, [M, pairs, 2, m]), 2, 2)[1], [M, pairs, m, 1]);
    // The block Z below the diagonal: every entry has t > s, so b_t − b_s ≤ 0 and no mask is needed.
    const z = mul(
      mul(betaY, matMul(ky, kx, false, true)),
      exp(sub(expandDims(by, 3), expandDims(bx, 2))),
    );
    const [invX, invY] = split(reshape(blocks, [M, pairs, 2, m, m]), 2, 2).map((t) =>
      reshape(t, [M, pairs, m, m]),
    );
    const lower = neg(matMul(invY, matMul(z, invX)));
    const top = concat([invX, zerosLike(invX)], 3);
    const bottom = concat([lower, invY], 3);
    blocks = concat([top, bottom], 2); // [M, pairs, 2m, 2m]
  }
  return reshape(blocks, [M, C, C]);
}
