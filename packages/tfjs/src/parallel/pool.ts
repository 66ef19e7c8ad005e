// The worker pool the host kernels (cpu, wasm backends) run their heads on: @ovq/core's
// createOvqWorkerPool, spawned once by the caller and reused by every kernel call until replaced
// or disposed. Kernels are global in tfjs, so the pool is too (one per @ovq/tfjs instance).
import type { OvqWorkerPool } from '@ovq/core';
import type { BaselineWorkerPool } from './baseline-pool.js';

let active: OvqWorkerPool | null = null;
let baselines: BaselineWorkerPool | null = null;

/**
 * Runs the OVQ host kernels' batch×heads on `pool` (from @ovq/core's createOvqWorkerPool); null
 * goes back to the calling thread. Results are bit-identical either way and for every pool size.
 * Returns the previous pool (not disposed: its owner disposes it).
 */
export function setHostWorkerPool(pool: OvqWorkerPool | null): OvqWorkerPool | null {
  const previous = active;
  active = pool;
  return previous;
}

/** The pool set by setHostWorkerPool, or null. A pool disposed elsewhere is still returned (calls then fail, naming it). */
export function hostWorkerPool(): OvqWorkerPool | null {
  return active;
}

/**
 * Runs the baseline host kernels' (softmax / SWA, linear, decay, Gated DeltaNet, VQ, KVM)
 * batch×heads on `pool` (createBaselineWorkerPool); null goes back to the calling thread. Same
 * bits either way. Returns the previous pool (its owner disposes it).
 */
export function setBaselineWorkerPool(pool: BaselineWorkerPool | null): BaselineWorkerPool | null {
  const previous = baselines;
  baselines = pool;
  return previous;
}

/** The pool set by setBaselineWorkerPool, or null. */
export function baselineWorkerPool(): BaselineWorkerPool | null {
  return baselines;
}
