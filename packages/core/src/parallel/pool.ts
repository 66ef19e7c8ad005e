// A pool of workers (Node worker_threads or browser module Workers) that runs the batched path's
// heads in parallel. Spawned once and reused. A call blocks the calling thread (Atomics.wait) until
// every head is done, so it stays synchronous like the rest of @ovq/core (tfjs kernels need that);
// browsers allow blocking only inside a Worker, so there the pool must be used from a Worker.
//
// Data: arrays already backed by a SharedArrayBuffer are handed to the workers as they are; any
// other array is copied once into the pool's shared arena (grown when needed, reused by later
// calls) and results are copied back: one memcpy, never a structured clone per worker. Heads are
// handed out one at a time through an atomic counter; each is computed wholly by one worker with
// the same code as the no-pool path, so every pool size gives the same bits. The caller's thread
// does as little as it can while the workers run: the workers scan the inputs for non-finite
// values, keep their workspaces between calls, and hand states back as float64 rows.
import type { BatchedJob } from '../chunked/batched.js';
import type { OvqState } from '../ovq/state.js';
import { OvqInputError, requirePositiveInteger } from '../validate.js';
import { ovqKernelsSetting } from '../wasm/simd.js';
import {
  CTRL,
  type JobMessage,
  MESSAGE_BYTES,
  MESSAGE_OFFSET,
  type ReadyMessage,
} from './protocol.js';
import { finalLayout, rowsLength, rowsOfState, stateOfFinal, writeRows } from './state-rows.js';

export type OvqWorkerPoolOptions = {
  /** Number of workers (default: the machine's hardware threads). */
  threads?: number;
};

/** A worker pool for `ovqAttentionBatched` / `ovqAttentionBatchedBackward` (`options.pool`). */
export interface OvqWorkerPool {
  readonly threads: number;
  /** True after `dispose()` or after a worker died (then every call fails; make a new pool). */
  readonly disposed: boolean;
  /** Terminates the workers. Idempotent. */
  dispose(): Promise<void>;
}

type AnyWorker = {
  postMessage(message: unknown): void;
  terminate(): unknown;
};

/** Pools made by this copy of the module: anything else (another realm or copy) is refused. */
const POOLS = new WeakSet<object>();

const isNode =
  typeof process !== 'undefined' &&
  typeof (process as { versions?: { node?: string } }).versions?.node === 'string';

/** Whether this thread may block in Atomics.wait (browsers forbid it on the main thread). */
function canBlock(): boolean {
  if (isNode) return true;
  return !(typeof window !== 'undefined' && typeof document !== 'undefined');
}

class Pool implements OvqWorkerPool {
  readonly threads: number;
  private readonly workers: AnyWorker[];
  private readonly ctrl: Int32Array;
  private readonly message: Uint8Array;
  private arena: SharedArrayBuffer | null = null;
  private broken: string | null = null;
  private closed = false;
  /** Test hook (injectFault): the worker that takes head 0 of the next call fails (see there). */
  fault: JobMessage['fault'] = null;

  constructor(workers: AnyWorker[], ctrlBuffer: SharedArrayBuffer) {
    this.threads = workers.length;
    this.workers = workers;
    this.ctrl = new Int32Array(ctrlBuffer, 0, MESSAGE_OFFSET / 4);
    this.message = new Uint8Array(ctrlBuffer, MESSAGE_OFFSET, MESSAGE_BYTES);
  }

  get disposed(): boolean {
    return this.closed || this.broken !== null;
  }

  markBroken(reason: string): void {
    this.broken ??= reason;
  }

  async dispose(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  /** Checks the pool can take a call; `argument` names it in the error. */
  check(argument: string): void {
    if (this.closed) {
      throw new OvqInputError(
        argument,
        'the pool is disposed; create a new one with createOvqWorkerPool',
      );
    }
    if (this.broken !== null) {
      throw new OvqInputError(
        argument,
        `the pool is unusable (${this.broken}); dispose it and create a new one`,
      );
    }
    if (!canBlock()) {
      throw new OvqInputError(
        argument,
        'a pool call blocks until its workers finish, which browsers allow only inside a Worker; call from a Worker',
      );
    }
  }

  /** A shared arena of at least `bytes` bytes (reused across calls). */
  arenaOf(bytes: number): SharedArrayBuffer {
    if (this.arena === null || this.arena.byteLength < bytes) {
      this.arena = new SharedArrayBuffer(Math.max(bytes, 1 << 16));
    }
    return this.arena;
  }

  /**
   * Posts a job to every worker and blocks until all are done; throws a worker's error. Returns
   * false when the workers' scan found a non-finite input (nothing was computed). A worker
   * stopped from outside (terminated, out of memory) runs no exit handler and its 'exit' event
   * cannot arrive while this thread blocks, so the wait polls the workers' liveness instead.
   */
  run(job: JobMessage): boolean {
    const ctrl = this.ctrl;
    for (const slot of [CTRL.next, CTRL.done, CTRL.error, CTRL.faulted])
      Atomics.store(ctrl, slot, 0);
    for (const slot of [CTRL.scanNext, CTRL.scanned, CTRL.bad]) Atomics.store(ctrl, slot, 0);
    job.fault = this.fault;
    this.fault = null;
    for (const worker of this.workers) worker.postMessage(job);
    if (job.fault === 'kill') killStalled(ctrl, this.workers);
    const n = this.workers.length;
    for (;;) {
      const done = Atomics.load(ctrl, CTRL.done);
      if (done >= n) break;
      if (Atomics.wait(ctrl, CTRL.done, done, 200) !== 'timed-out') continue;
      const dead = this.workers.findIndex(stopped);
      if (dead >= 0 && Atomics.load(ctrl, CTRL.done) < n) {
        const reason = `worker ${dead} stopped during the call (terminated from outside or out of memory)`;
        this.markBroken(reason);
        Atomics.compareExchange(ctrl, CTRL.error, 0, 2); // the others stop taking heads
        throw new Error(`@ovq/core worker pool: ${reason}`);
      }
    }
    if (Atomics.load(ctrl, CTRL.error) !== 0) {
      const length = Math.min(Atomics.load(ctrl, CTRL.messageLength), MESSAGE_BYTES);
      const text = new TextDecoder().decode(this.message.slice(0, length));
      if (Atomics.load(ctrl, CTRL.error) === 2) this.markBroken(text);
      throw new Error(`@ovq/core worker pool: ${text}`);
    }
    return Atomics.load(ctrl, CTRL.bad) === 0;
  }
}

/**
 * Node: whether a worker thread has stopped. Its event-loop utilization reports a negative idle
 * time once the thread is gone, readable synchronously while the caller blocks (browsers: never).
 */
function stopped(worker: AnyWorker): boolean {
  const perf = (worker as { performance?: { eventLoopUtilization?: () => { idle: number } } })
    .performance;
  return typeof perf?.eventLoopUtilization === 'function' && perf.eventLoopUtilization().idle < 0;
}

/**
 * Node: waits (≤ 2 s) until each worker's event loop has started, so that its utilization (and
 * so `stopped`) reads the live thread; before that it reads zeros even after the thread is gone.
 */
async function primeLiveness(workers: AnyWorker[]): Promise<void> {
  const perf = (w: AnyWorker) =>
    (w as { performance?: { eventLoopUtilization?: () => { idle: number; active: number } } })
      .performance;
  for (let i = 0; i < 200; i++) {
    const started = workers.every((w) => {
      const u = perf(w)?.eventLoopUtilization?.();
      return u === undefined || u.idle + u.active > 0;
    });
    if (started) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Test hook 'kill': waits (≤ 10 s) for the worker stalled inside the job, then terminates it. */
function killStalled(ctrl: Int32Array, workers: AnyWorker[]): void {
  if (Atomics.wait(ctrl, CTRL.faulted, 0, 10_000) === 'timed-out') return;
  void Promise.resolve(workers[Atomics.load(ctrl, CTRL.faulted) - 1].terminate()).catch(() => {});
}

function defaultThreads(os: { availableParallelism?: () => number; cpus(): unknown[] } | null) {
  if (os) return os.availableParallelism?.() ?? os.cpus().length;
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  return nav?.hardwareConcurrency ?? 2;
}

/** Where the worker script is: next to this module (TypeScript sources need the source hooks). */
function workerLocation(): { url: URL; execArgv: string[] } {
  const fromSources = import.meta.url.endsWith('.ts');
  const url = new URL(fromSources ? './worker.ts' : './worker.js', import.meta.url);
  const execArgv = fromSources
    ? ['--import', new URL('./source-loader.mjs', import.meta.url).href]
    : [];
  return { url, execArgv };
}

/**
 * Starts `threads` workers and resolves once every one is ready. The pool is reused by every call
 * that gets it as `options.pool`; `dispose()` terminates it (Node: idle workers never keep the
 * process alive, and they end with it).
 */
export async function createOvqWorkerPool(
  options: OvqWorkerPoolOptions = {},
): Promise<OvqWorkerPool> {
  if (typeof options !== 'object' || options === null) {
    throw new OvqInputError('options', `got ${String(options)}; expected { threads?: number }`);
  }
  if (typeof SharedArrayBuffer !== 'function') {
    throw new OvqInputError(
      'createOvqWorkerPool',
      'SharedArrayBuffer is unavailable (browsers need a cross-origin-isolated page)',
    );
  }
  const os = isNode
    ? ((await import(/* @vite-ignore */ 'node:os' as string)) as {
        availableParallelism?: () => number;
        cpus(): unknown[];
      })
    : null;
  const threads =
    options.threads === undefined
      ? defaultThreads(os)
      : requirePositiveInteger('options.threads', options.threads);
  if (threads > 256) {
    throw new OvqInputError('options.threads', `got ${threads}; expected at most 256`);
  }
  const ctrlBuffer = new SharedArrayBuffer(MESSAGE_OFFSET + MESSAGE_BYTES);
  const { url, execArgv } = workerLocation();
  const workers: AnyWorker[] = [];
  let pool: Pool | null = null;
  const ready: Promise<void>[] = [];
  const fail = (index: number, what: string) => {
    const reason = `worker ${index} ${what}`;
    if (pool) pool.markBroken(reason);
    return reason;
  };
  if (isNode) {
    const { Worker } = (await import(/* @vite-ignore */ 'node:worker_threads' as string)) as {
      Worker: new (
        url: URL,
        options: { execArgv: string[]; workerData: unknown },
      ) => AnyWorker & {
        on(event: string, listener: (value: unknown) => void): void;
        once(event: string, listener: (value: unknown) => void): void;
        unref(): void;
        ref(): void;
      };
    };
    for (let i = 0; i < threads; i++) {
      const worker = new Worker(url, { execArgv, workerData: { index: i, ctrl: ctrlBuffer } });
      workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.on('message', (m) => {
            if ((m as ReadyMessage)?.type === 'ready') {
              worker.unref();
              resolve();
            }
          });
          worker.on('error', (e) => reject(new Error(fail(i, `failed: ${String(e)}`))));
          worker.on('exit', (code) => reject(new Error(fail(i, `exited with code ${code}`))));
        }),
      );
    }
  } else {
    const WorkerCtor = (globalThis as { Worker?: new (url: URL, o: object) => AnyWorker }).Worker;
    if (WorkerCtor === undefined) {
      throw new OvqInputError('createOvqWorkerPool', 'this environment has no Worker');
    }
    for (let i = 0; i < threads; i++) {
      const worker = new WorkerCtor(url, { type: 'module' }) as AnyWorker & {
        addEventListener(
          event: string,
          listener: (e: { data?: unknown; message?: string }) => void,
        ): void;
      };
      workers.push(worker);
      ready.push(
        new Promise<void>((resolve, reject) => {
          worker.addEventListener('message', (e) => {
            if ((e.data as ReadyMessage)?.type === 'ready') resolve();
          });
          worker.addEventListener('error', (e) =>
            reject(new Error(fail(i, `failed: ${e.message ?? 'error'}`))),
          );
        }),
      );
      worker.postMessage({ type: 'init', index: i, ctrl: ctrlBuffer });
    }
  }
  try {
    await Promise.all(ready);
    if (isNode) await primeLiveness(workers);
  } catch (error) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw error;
  }
  pool = new Pool(workers, ctrlBuffer);
  POOLS.add(pool);
  return pool;
}

/**
 * Test-only: makes the worker that takes head 0 of the pool's next call throw, exit, or ('kill')
 * stall inside the call until the pool terminates it from outside.
 */
export function injectFault(pool: OvqWorkerPool, fault: 'throw' | 'exit' | 'kill'): void {
  (pool as Pool).fault = fault;
}

/** The pool behind `value`, or an OvqInputError naming `argument`. */
function checkPool(value: unknown, argument: string): Pool {
  if (!(typeof value === 'object' && value !== null && POOLS.has(value))) {
    throw new OvqInputError(
      argument,
      'expected a pool made by createOvqWorkerPool of this copy of @ovq/core (got something else, e.g. a pool from another realm or another copy of the package)',
    );
  }
  const pool = value as Pool;
  pool.check(argument);
  return pool;
}

type Shareable = Float32Array | Float64Array | Int32Array | Uint8Array;

const isShared = (x: ArrayBufferView): boolean =>
  typeof SharedArrayBuffer === 'function' && x.buffer instanceof SharedArrayBuffer;

/**
 * Runs a batched job on `pool` and returns the final states (forward; [] for the backward), or
 * null when `scan` is set and the workers found a non-finite input value (nothing was written;
 * the caller reports it). Input arrays are shared as they are or copied into the arena; output
 * arrays not already shared get arena space and are copied back after the call. States travel
 * as float64 rows (state-rows.ts): initial ones in the arena, final ones in buffers of their own.
 */
export function runOnPool(
  poolValue: unknown,
  argument: string,
  job: BatchedJob,
  initStates: OvqState[] | undefined,
  scan: boolean,
): OvqState[] | null {
  const pool = checkPool(poolValue, argument);
  const forward = job.kind === 'forward';
  const { dk, dv } = job;
  const C = job.config.chunkSize;
  // Plan the arena: every array that is not shared yet, plus the initial states.
  type Plan = {
    key: keyof BatchedJob | 'statesIn';
    make: number;
    ctor: 'f32' | 'f64' | 'i32';
    src?: ArrayLike<number>;
    copyBack?: Shareable;
  };
  const plans: Plan[] = [];
  const shared: Partial<Record<string, Shareable>> = {};
  const plan = (key: Plan['key'], x: ArrayLike<number> | null, output: boolean) => {
    if (x === null) return;
    if (ArrayBuffer.isView(x) && isShared(x as ArrayBufferView)) {
      shared[key] = x as Shareable;
      return;
    }
    const ctor = x instanceof Float32Array ? 'f32' : x instanceof Int32Array ? 'i32' : 'f64';
    plans.push({
      key,
      make: x.length,
      ctor,
      src: output ? undefined : x,
      copyBack: output ? (x as Shareable) : undefined,
    });
  };
  plan('q', job.q, false);
  plan('k', job.k, false);
  plan('v', job.v, false);
  plan('dOutput', job.dOutput, false);
  plan('out', job.out, true);
  plan('dq', job.dq, true);
  plan('dkOut', job.dkOut, true);
  plan('dvOut', job.dvOut, true);
  plan('dbeta', job.dbeta, true);
  plan('betas', job.betas, false);
  plan('codes', job.codes, true);
  plan('sizeBefore', job.sizeBefore, true);
  plan('absorbs', job.absorbs, true);
  const initRows = initStates?.map(rowsOfState);
  let statesInAt: number[] | null = null;
  if (initRows) {
    statesInAt = [];
    let length = 0;
    for (const rows of initRows) {
      statesInAt.push(length);
      length += rowsLength(rows.size, rows.pendingCount, dk, dv);
    }
    plans.push({ key: 'statesIn', make: length, ctor: 'f64' });
  }
  const width = { f32: 4, f64: 8, i32: 4 } as const;
  let total = 0;
  for (const p of plans) total += Math.ceil((p.make * width[p.ctor]) / 64) * 64;
  const arena = pool.arenaOf(total);
  let at = 0;
  const views: Record<string, Shareable> = {};
  for (const p of plans) {
    const view =
      p.ctor === 'f32'
        ? new Float32Array(arena, at, p.make)
        : p.ctor === 'f64'
          ? new Float64Array(arena, at, p.make)
          : new Int32Array(arena, at, p.make);
    if (p.src) view.set(p.src);
    views[p.key] = view;
    at += Math.ceil((p.make * width[p.ctor]) / 64) * 64;
  }
  const statesIn = initRows ? (views.statesIn as Float64Array) : null;
  if (initRows && statesIn && statesInAt) {
    for (let h = 0; h < job.heads; h++) writeRows(initRows[h], statesIn, statesInAt[h], dk, dv);
  }
  // Final states: one buffer per head, written by the workers and kept by the returned state.
  const layout = forward ? finalLayout(job.rowsCap, C, dk, dv) : null;
  const statesOut = layout
    ? Array.from(
        { length: job.heads },
        () => new Float64Array(new SharedArrayBuffer(layout.length * 8)),
      )
    : null;
  const pick = <T>(key: string, fallback: T): T => (views[key] ?? shared[key] ?? fallback) as T;
  const message: JobMessage = {
    type: 'job',
    job: {
      ...job,
      q: pick('q', job.q),
      k: pick('k', job.k),
      v: pick('v', job.v),
      dOutput: pick('dOutput', job.dOutput),
      out: pick('out', job.out),
      dq: pick('dq', job.dq),
      dkOut: pick('dkOut', job.dkOut),
      dvOut: pick('dvOut', job.dvOut),
      dbeta: pick('dbeta', job.dbeta),
      betas: pick('betas', job.betas),
      codes: pick('codes', job.codes),
      sizeBefore: pick('sizeBefore', job.sizeBefore),
      absorbs: pick('absorbs', job.absorbs),
    },
    statesIn,
    statesInAt,
    statesOut,
    layout,
    threads: pool.threads,
    scan,
    kernels: ovqKernelsSetting(),
    fault: null,
  };
  if (!pool.run(message)) return null;
  for (const p of plans) {
    if (p.copyBack) p.copyBack.set(views[p.key] as never);
  }
  const states: OvqState[] = [];
  if (statesOut && layout) {
    for (let h = 0; h < job.heads; h++) {
      const beta = job.betas[h];
      const config = beta === job.config.beta ? job.config : { ...job.config, beta };
      states.push(stateOfFinal(statesOut[h], layout, config));
    }
  }
  return states;
}
