// What the baselines worker pool and its workers exchange (Node worker_threads). The control block
// is one small SharedArrayBuffer made with the pool: a head counter, a count of workers done with
// the current call, and the first error (a code and a UTF-8 message). Tensor data travels in one
// shared arena (posting a SharedArrayBuffer shares it; nothing is cloned per worker).

/** Int32 slots of the control block. */
// faulted (test hook 'kill'): 1 + the index of the worker stalled inside the call.
export const CTRL = { next: 0, done: 1, error: 2, messageLength: 3, faulted: 4 } as const;
export const MESSAGE_OFFSET = 64;
export const MESSAGE_BYTES = 4096;

/** A per-head or per-token extra input, as laid out in the arena. */
export type ExtraLayout = { kind: 'perHead' | 'perToken'; width: number };

/**
 * One call. Offsets are in float32 elements of `arena`. Forward writes `out`; backward writes dq,
 * dk, dv and one gradient per extra: per-head extras per (batch, head) (`width` values each,
 * summed by the caller in a fixed order), per-token extras in place.
 */
export type BaselineJob = {
  type: 'job';
  kernelName: string;
  kind: 'forward' | 'backward';
  config: string;
  batch: number;
  heads: number;
  seqLen: number;
  keyDim: number;
  valueDim: number;
  extras: ExtraLayout[];
  arena: SharedArrayBuffer;
  offsets: {
    q: number;
    k: number;
    v: number;
    extras: number[];
    dy: number;
    out: number;
    dq: number;
    dk: number;
    dv: number;
    dExtras: number[];
  };
  /**
   * Fault injection for tests: the worker taking head 0 throws, exits, or ('kill') stalls until
   * the caller terminates it from outside (as an out-of-memory kill would).
   */
  fault: 'throw' | 'exit' | 'kill' | null;
};
