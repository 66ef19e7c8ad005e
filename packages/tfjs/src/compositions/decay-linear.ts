// Decay linear attention (Mamba2/SSD) as a composition of tfjs ops (the webgpu route), in the
// chunked SSD form: within a chunk of DECAY_CHUNK steps the weights exp(L_t − L_s) of a chunk-local
// L = cumsum(ln a); across chunks the states S_c = A_c S_{c−1} + ΔS_c, solved at once by a
// [chunks, chunks] matrix of chunk decays. Memory is O(seqLen · chunk + chunks · dk · dv + chunks²)
// per [batch, head]; tfjs autodiff gives the gradient.
import type { DecayLinearConfig } from '@ovq/baselines';
import {
  add,
  cast,
  exp,
  expandDims,
  log,
  matMul,
  mul,
  pad,
  reshape,
  scalar,
  slice,
  sub,
  type Tensor,
  type Tensor4D,
  tidy,
} from '@tensorflow/tfjs-core';
import { bandBias, bandMask, cumsumAlong, fromChunks, toChunks } from './shared.js';

/** Time steps per chunk (fewer when the sequence is shorter). */
export const DECAY_CHUNK = 64;

export function decayLinearComposite(
  q: Tensor,
  k: Tensor,
  v: Tensor,
  decay: Tensor,
  config: DecayLinearConfig,
): Tensor4D {
  const [B, H, T, dk] = q.shape as number[];
  const dv = v.shape[3] as number;
  const scale = config.scale ?? 1;
  const C = Math.min(DECAY_CHUNK, T);
  const n = Math.ceil(T / C);
  return tidy(() => {
    const qc = toChunks(q, C); // [B, H, n, C, dk]
    const kc = toChunks(k, C);
    const vc = toChunks(v, C); // [B, H, n, C, dv]
    // Padded steps get a = 1 (ln a = 0); they lie after every real step.
    const L = cumsumAlong(reshape(toChunks(expandDims(log(decay), 3), C), [B, H, n, C]), 3);
    // Π_{s<j≤t} a_j = exp(L_t − L_s) inside a chunk; entries s > t (finite) get −∞ before the exp,
    // so that they neither overflow nor pass a gradient.
    const diff = sub(expandDims(L, 4), expandDims(L, 3)); // [B, H, n, C, C]
    const weights = exp(add(diff, bandBias(0, C, 0, C, C)));
    const intra = matMul(mul(matMul(qc, kc, false, true), weights), vc);
    // ΔS_c = Σ_s exp(L_end − L_s) k_s v_sᵀ (exponents ≤ 0) and the chunk's decay A_c = exp(L_end).
    const Lend = slice(L, [0, 0, 0, C - 1], [B, H, n, 1]);
    const deltaS = matMul(mul(kc, expandDims(exp(sub(Lend, L)), 4)), vc, true, false);
    // State at the end of chunk c: Σ_{c'≤c} exp(Σ_{c'<j≤c} ln A_j) ΔS_c'. The segment sums are
    // cumsums of masked copies (no difference of large prefix sums), −∞ above the diagonal.
    const lnA = reshape(Lend, [B, H, n, 1]);
    const strictlyBelow = cast(bandMask(-1, n, 0, n, n), 'float32');
    const segment = cumsumAlong(mul(lnA, strictlyBelow), 2);
    const chunkDecay = exp(add(segment, bandBias(0, n, 0, n, n))); // [B, H, n, n]
    const endState = matMul(chunkDecay, reshape(deltaS, [B, H, n, dk * dv]));
    // The state entering chunk c is the end state of chunk c − 1 (zero for the first).
    const oneChunkLater: [number, number][] = [
      [0, 0],
      [0, 0],
      [1, 0],
      [0, 0],
    ];
    const shifted = slice(pad(endState, oneChunkLater), [0, 0, 0, 0], [B, H, n, dk * dv]);
    const startState = reshape(shifted, [B, H, n, dk, dv]);
    const inter = matMul(mul(qc, expandDims(exp(L), 4)), startState);
    return fromChunks(mul(add(intra, inter), scalar(scale)), T) as Tensor4D;
  });
}
