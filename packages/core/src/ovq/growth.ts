import type { ResolvedGrowth } from './types.js';

/** G(τ): the schedule value before flooring (ALGORITHM.md §4, "Growth schedules"). */
export function growthValue(growth: ResolvedGrowth, capacity: number, tau: number): number {
  switch (growth.kind) {
    case 'saturating': {
      // A saturation level below N leaves the rows above it to novelty spawn.
      const rows = Math.min(growth.rows ?? capacity, capacity);
      return (rows * tau) / (rows + tau);
    }
    case 'log':
      return growth.alpha * Math.log1p(tau / growth.alpha);
    case 'sqrt':
      return growth.scale * Math.sqrt(tau);
    case 'linear':
      return growth.rate * tau;
    case 'fixed':
      return capacity;
    case 'full':
      return tau;
  }
}

/**
 * Target dictionary size after τ absorbed tokens: n* = min(N, τ, max(1, ⌊G(τ)⌋)).
 * Computed in float64 by every implementation (CPU, GPU host code) so they agree exactly.
 */
export function growthTarget(growth: ResolvedGrowth, capacity: number, tau: number): number {
  return Math.min(capacity, tau, Math.max(1, Math.floor(growthValue(growth, capacity, tau))));
}

/** Rows to spawn at an absorb: m = clamp(n* − n, 0, |P|). */
export function spawnCount(
  growth: ResolvedGrowth,
  capacity: number,
  tau: number,
  size: number,
  pending: number,
): number {
  return Math.max(0, Math.min(growthTarget(growth, capacity, tau) - size, pending));
}

/**
 * Rows novelty spawn (`spawnDistance`) may add at an absorb after the schedule's `scheduled`
 * spawns: clamp(N − n − m, 0, |P| − m); 0 when the option is off.
 */
export function noveltyRoom(
  spawnDistance: number | undefined,
  capacity: number,
  size: number,
  scheduled: number,
  pending: number,
): number {
  if (spawnDistance === undefined) return 0;
  return Math.max(0, Math.min(capacity - size - scheduled, pending - scheduled));
}
