// FLOP models: the algorithmic multiply-adds (×2) of each mixer's recurrent definition, counted
// the same way for every implementation of that mixer. GFLOP/s therefore compares implementations
// of one mixer; across mixers compare tokens/s. Exponentials, normalisation and other O(T·d) terms
// are left out. Backward is counted as 2× forward (the usual convention), so forward+backward = 3×.
import { growthTarget, type OvqConfig, resolveOvqConfig } from '@ovq/core';
import type { Dims, Mixer, Mode } from './types.js';

const withBackward = (forward: number, mode: Mode) => (mode === 'forward' ? forward : 3 * forward);

/**
 * OVQ (ALGORITHM.md §4): each token reads the n dictionary rows plus the pending tokens
 * (2·(dk+dv) per row: logit and weighted sum); each absorb computes C·n distances during
 * farthest-point spawn and assignment (2·dk each) and updates rows (2·(dk+dv) per token).
 */
export function ovqForwardFlops(T: number, dims: Dims, config: OvqConfig): number {
  const c = resolveOvqConfig(config);
  const C = c.chunkSize;
  const d = dims.keyDim + dims.valueDim;
  let n = 0;
  let flops = 0;
  for (let start = 0; start < T; start += C) {
    const rows = Math.min(C, T - start);
    // Σ_{p=1..rows} 2d(n + p)
    flops += 2 * d * (rows * n + (rows * (rows + 1)) / 2);
    if (rows < C) break; // a final partial chunk stays pending
    const after = Math.max(n, growthTarget(c.growth, c.capacity, start + C));
    const spawned = Math.min(after - n, C);
    flops += 2 * dims.keyDim * C * (n + spawned) + 2 * dims.keyDim * C * after + 2 * d * C;
    n = after;
  }
  return flops;
}

/** Causal softmax: token t scores and averages t+1 keys/values (window W caps that). */
export function softmaxForwardFlops(T: number, dims: Dims, window: number | null = null): number {
  const d = dims.keyDim + dims.valueDim;
  if (window === null || window >= T) return T * (T + 1) * d;
  const W = window;
  return (W * (W + 1) + 2 * (T - W) * W) * d;
}

/** Per-token cost of the dense-state recurrences, in units of dk·dv. */
const DENSE_STATE_COST: Partial<Record<Mixer, number>> = {
  // S += φ(k)vᵀ (2), y = Sᵀφ(q) (2)
  linear: 4,
  // S = aS (1) + kvᵀ (2), y = Sᵀq (2)
  'decay-linear': 5,
  // S = αS(I − βkkᵀ) + βvkᵀ: Sk (2), rank-1 update (2), decay (1), read (2)
  'gated-deltanet': 7,
};

export function denseStateForwardFlops(mixer: Mixer, T: number, dims: Dims): number {
  const units = DENSE_STATE_COST[mixer];
  return units === undefined ? Number.NaN : units * dims.keyDim * dims.valueDim * T;
}

export function modeFlops(forward: number, mode: Mode): number {
  return withBackward(forward, mode);
}
