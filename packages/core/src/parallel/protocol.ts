// What the pool and its workers exchange. The control block is one small SharedArrayBuffer made
// with the pool: a head counter the workers take heads from, a count of workers done with the
// current job, and the first error (a code and a UTF-8 message).
import type { BatchedJob } from '../chunked/batched.js';
import type { OvqKernelsSetting } from '../wasm/simd.js';

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
} as const;
export const MESSAGE_OFFSET = 64;
export const MESSAGE_BYTES = 4096;

/** Sent once by each worker when its module has loaded. */
export type ReadyMessage = { type: 'ready' };

/** Browser workers get their index and the control block with this first message. */
export type InitMessage = { type: 'init'; index: number; ctrl: SharedArrayBuffer };

/**
 * One call. Every typed array is backed by a SharedArrayBuffer (shared, not copied, by
 * postMessage). States: head h's input bytes are statesIn[stateIndex[3h] … + stateIndex[3h+1]];
 * its final state is written to statesOut[h·slot …] with its length in stateIndex[3h+2].
 */
export type JobMessage = {
  type: 'job';
  job: BatchedJob;
  statesIn: Uint8Array | null;
  statesOut: Uint8Array | null;
  stateIndex: Int32Array;
  slot: number;
  /** The caller's kernel setting (setOvqKernels), so every worker runs the same kernels. */
  kernels: OvqKernelsSetting;
  /**
   * Fault injection for the pool's own tests: the worker taking head 0 throws, exits, or ('kill')
   * stalls until the caller terminates it from outside (as an out-of-memory kill would).
   */
  fault: 'throw' | 'exit' | 'kill' | null;
};
