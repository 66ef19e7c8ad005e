// What the pool and its workers exchange. The control block is one small SharedArrayBuffer made
// with the pool: a head counter the workers take heads from, a count of workers done with the
// current job, and the first error (a code and a UTF-8 message). Before computing, the workers
// scan the inputs for non-finite values (heads from a second counter) and meet at a barrier, so
// that no output is written for a bad input.
import type { BatchedJob } from '../chunked/batched.js';
import type { OvqKernelsSetting } from '../wasm/simd.js';
import type { FinalLayout } from './state-rows.js';

/** Int32 slots of the control block. */
export const CTRL = {
  /** Next head to take (Atomics.add). */
  next: 0,
  /** Workers finished with the current job; the caller waits on it. */
  done: 1,
  /** 0 = fine, 1 = a head threw, 2 = a worker died (the pool is unusable afterwards). */
  error: 2,
  messageLength: 3,
  /** Test hook 'kill': 1 + the index of the worker stalled inside the job, waiting to be killed. */
  faulted: 4,
  /** Next head whose inputs to scan for non-finite values (Atomics.add). */
  scanNext: 5,
  /** Workers done scanning (the barrier before any output is written). */
  scanned: 6,
  /** 1 when a scan found a non-finite input value (the caller then reports it). */
  bad: 7,
} as const;
export const MESSAGE_OFFSET = 64;
export const MESSAGE_BYTES = 4096;

/** Sent once by each worker when its module has loaded. */
export type ReadyMessage = { type: 'ready' };

/** Browser workers get their index and the control block with this first message. */
export type InitMessage = { type: 'init'; index: number; ctrl: SharedArrayBuffer };

/**
 * One call. Every typed array is backed by a SharedArrayBuffer (shared, not copied, by
 * postMessage). States as float64 rows (state-rows.ts): head h's initial state is at
 * statesIn[statesInAt[h] …]; its final state is written to statesOut[h] (laid out by `layout`).
 */
export type JobMessage = {
  type: 'job';
  job: BatchedJob;
  statesIn: Float64Array | null;
  statesInAt: number[] | null;
  statesOut: Float64Array[] | null;
  layout: FinalLayout | null;
  /** Workers in the pool (the scan barrier waits for all of them). */
  threads: number;
  /** Scan q, k, v (and dOutput) for non-finite values before computing. */
  scan: boolean;
  /** The caller's kernel setting (setOvqKernels), so every worker runs the same kernels. */
  kernels: OvqKernelsSetting;
  /**
   * Fault injection for the pool's own tests: the worker taking head 0 throws, exits, or ('kill')
   * stalls until the caller terminates it from outside (as an out-of-memory kill would).
   */
  fault: 'throw' | 'exit' | 'kill' | null;
};
