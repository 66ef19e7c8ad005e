// The FLOP model of the chunked path, used by the benchmark to turn times into GFLOP/s. It counts
// what the kernels actually execute: 2 FLOPs per multiply-add of every A·Bᵀ product (including
// the masked half of the in-chunk block, which is computed), 5 per softmax entry (scale+bias,
// subtract max, exp, sum, normalise) and the absorb's distance work. Dictionary sizes follow the
// growth schedule exactly (they do not depend on the data), via core's spawnCount.
import { spawnCount } from '../ovq/growth.js';
import type { OvqConfig } from '../ovq/types.js';
import { resolveOvqConfig } from '../validate.js';

export type ChunkedFlops = {
  /** `ovqAttention` from an empty state. */
  forward: number;
  /** `ovqAttentionBackward` (its decision sweep, recomputed reads and the gradients). */
  backward: number;
  /** Dictionary size after the last absorb. */
  finalSize: number;
};

/** FLOPs of one head of `seqLen` tokens under `config` (the benchmark's FLOP model). */
export function chunkedFlops(
  dims: { seqLen: number; keyDim: number; valueDim: number },
  config: OvqConfig,
): ChunkedFlops {
  const cfg = resolveOvqConfig(config);
  const { seqLen: T, keyDim: dk, valueDim: dv } = dims;
  const C = cfg.chunkSize;
  let n = 0;
  let forward = 0;
  let backward = 0;
  for (let t0 = 0; t0 < T; t0 += C) {
    const L = Math.min(C, T - t0);
    const wide = n + L;
    const live = L * n + (L * (L + 1)) / 2;
    const read = 2 * L * wide * (dk + dv) + 5 * live;
    forward += read;
    // Backward recomputes the logits and softmax, then dp, pᵀg, dℓ·K, dℓᵀq̂ and dℓ (4 per entry).
    backward += 2 * L * wide * dk + 5 * live + 2 * L * wide * (2 * dv + 2 * dk) + 4 * L * wide;
    if (L === C) {
      const m = spawnCount(cfg.growth, cfg.capacity, t0 + C, n, C);
      const absorb = 2 * C * n * dk + 3 * C * m * dk + C * (dk + dv);
      forward += absorb;
      backward += absorb;
      n += m;
    }
  }
  return { forward, backward, finalSize: n };
}
