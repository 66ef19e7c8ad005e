// A worker pool for the baseline host kernels (softmax / SWA, linear, decay-linear, Gated
// DeltaNet, VQ, KVM) on cpu and wasm: Node worker_threads spawned once and reused. A call copies
// the inputs once into a shared arena (grown when needed, reused by later calls), hands heads out
// one at a time through an atomic counter — each head is computed wholly by one worker with the
// same code as the calling thread, so every pool size gives the same bits — and blocks
// (Atomics.wait) until all are done: tfjs kernels are synchronous. The OVQ kernel uses @ovq/core's
// own pool (createOvqWorkerPool); this one mirrors its protocol for the baselines.
// Node modules are imported when a pool is created, so the package still loads in browsers.
import type { Worker } from 'node:worker_threads';
import { OvqTfjsInputError } from '../errors.js';
import type { BatchedInputs, ExtraInput } from '../kernels/host-mixer.js';
import { type BaselineJob, CTRL, MESSAGE_BYTES, MESSAGE_OFFSET } from './protocol.js';

export type BaselineWorkerPool = {
  readonly threads: number;
  /** True after dispose() or after a worker died (then every call fails; make a new pool). */
  readonly disposed: boolean;
  /** Terminates the workers. Idempotent. */
  dispose(): Promise<void>;
};

/** Where the worker is, and how to start it from the TypeScript sources (tests) if need be. */
async function workerLocation(): Promise<{ url: URL; execArgv: string[] }> {
  const fromSources = import.meta.url.endsWith('.ts');
  const url = new URL(
    fromSources ? './baseline-worker.ts' : './baseline-worker.js',
    import.meta.url,
  );
  if (!fromSources) return { url, execArgv: [] };
  // @ovq/core's loader transpiles TypeScript for its own pool's workers; its sources ship with it.
  const { createRequire } = await import('node:module');
  const core = new URL(
    '.',
    pathUrl(createRequire(import.meta.url).resolve('@ovq/core/package.json')),
  );
  const loader = new URL('src/parallel/source-loader.mjs', core).href;
  return { url, execArgv: ['--conditions', '@ovq/source', '--import', loader] };
}

const pathUrl = (path: string) => new URL(`file://${path}`);

/**
 * Whether a worker thread has stopped: its event-loop utilization reports a negative idle time
 * once the thread is gone, readable synchronously while the caller blocks (after primeLiveness).
 */
const stopped = (w: Worker): boolean => w.performance.eventLoopUtilization().idle < 0;

/**
 * Waits (≤ 2 s) until each worker's event loop has started, so that its utilization (and so
 * `stopped`) reads the live thread; before that it reads zeros even after the thread is gone.
 */
async function primeLiveness(workers: Worker[]): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const started = workers.every((w) => {
      const u = w.performance.eventLoopUtilization();
      return u.idle + u.active > 0;
    });
    if (started) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const POOLS = new WeakSet<object>();

class Pool implements BaselineWorkerPool {
  readonly threads: number;
  private readonly ctrl: Int32Array;
  private readonly message: Uint8Array;
  private arena: SharedArrayBuffer | null = null;
  private broken: string | null = null;
  private closed = false;
  /** Test hook (injectBaselineFault): the worker that takes head 0 of the next call fails. */
  fault: BaselineJob['fault'] = null;

  constructor(
    private readonly workers: Worker[],
    ctrlBuffer: SharedArrayBuffer,
  ) {
    this.threads = workers.length;
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

  check(where: string): void {
    if (this.closed)
      throw new OvqTfjsInputError(where, 'the baselines worker pool is disposed; set a new one');
    if (this.broken !== null)
      throw new OvqTfjsInputError(
        where,
        `the baselines worker pool is unusable (${this.broken}); dispose it and create a new one`,
      );
  }

  /** Test hook 'kill': waits (≤ 10 s) for the worker stalled inside the call, then terminates it. */
  private killStalled(): void {
    if (Atomics.wait(this.ctrl, CTRL.faulted, 0, 10_000) === 'timed-out') return;
    this.workers[Atomics.load(this.ctrl, CTRL.faulted) - 1].terminate().catch(() => {});
  }

  /**
   * Runs one forward or backward call over every [batch, head]; returns the outputs as views of
   * the shared arena, valid until the pool's next call.
   */
  run(
    kernelName: string,
    kind: 'forward' | 'backward',
    config: string,
    x: BatchedInputs,
    extras: readonly ExtraInput[],
    dy: Float32Array | null,
  ): Float32Array[] {
    this.check(kernelName);
    const { batch, heads, seqLen: T, keyDim: dk, valueDim: dv } = x;
    const BH = batch * heads;
    let at = 0;
    const take = (n: number) => {
      const offset = at;
      at += n;
      return offset;
    };
    const layout = extras.map((e, i) => ({
      kind: e.kind,
      width: e.kind === 'perHead' ? x.extraWidth[i] : T,
    }));
    const offsets = {
      q: take(BH * T * dk),
      k: take(BH * T * dk),
      v: take(BH * T * dv),
      extras: x.extras.map((e) => take(e.length)),
      dy: kind === 'backward' ? take(BH * T * dv) : -1,
      out: kind === 'forward' ? take(BH * T * dv) : -1,
      dq: kind === 'backward' ? take(BH * T * dk) : -1,
      dk: kind === 'backward' ? take(BH * T * dk) : -1,
      dv: kind === 'backward' ? take(BH * T * dv) : -1,
      dExtras: layout.map((e) => (kind === 'backward' ? take(BH * e.width) : -1)),
    };
    if (this.arena === null || this.arena.byteLength < at * 4)
      this.arena = new SharedArrayBuffer(Math.max(at * 4, 1 << 16));
    const f = new Float32Array(this.arena, 0, at);
    f.set(x.q, offsets.q);
    f.set(x.k, offsets.k);
    f.set(x.v, offsets.v);
    x.extras.forEach((e, i) => {
      f.set(e, offsets.extras[i]);
    });
    if (dy) f.set(dy, offsets.dy);
    const job: BaselineJob = {
      type: 'job',
      kernelName,
      kind,
      config,
      batch,
      heads,
      seqLen: T,
      keyDim: dk,
      valueDim: dv,
      extras: layout,
      arena: this.arena,
      offsets,
      fault: this.fault,
    };
    this.fault = null;
    const ctrl = this.ctrl;
    Atomics.store(ctrl, CTRL.next, 0);
    Atomics.store(ctrl, CTRL.done, 0);
    Atomics.store(ctrl, CTRL.error, 0);
    Atomics.store(ctrl, CTRL.faulted, 0);
    for (const w of this.workers) w.postMessage(job);
    if (job.fault === 'kill') this.killStalled();
    // A worker stopped from outside (terminated, out of memory) runs no exit handler, and its
    // 'exit' event cannot arrive while this thread blocks: poll the workers' liveness instead.
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
        throw new Error(`@ovq/tfjs baselines worker pool (${kernelName}): ${reason}`);
      }
    }
    if (Atomics.load(ctrl, CTRL.error) !== 0) {
      const length = Math.min(Atomics.load(ctrl, CTRL.messageLength), MESSAGE_BYTES);
      const text = new TextDecoder().decode(this.message.slice(0, length));
      if (Atomics.load(ctrl, CTRL.error) === 2) this.markBroken(text);
      throw new Error(`@ovq/tfjs baselines worker pool (${kernelName}): ${text}`);
    }
    // Views of the arena: the caller copies them into tensors before the pool's next call.
    const view = (offset: number, n: number) => f.subarray(offset, offset + n);
    if (kind === 'forward') return [view(offsets.out, BH * T * dv)];
    return [
      view(offsets.dq, BH * T * dk),
      view(offsets.dk, BH * T * dk),
      view(offsets.dv, BH * T * dv),
      ...layout.map((e, i) => view(offsets.dExtras[i], BH * e.width)),
    ];
  }
}

/**
 * Starts `threads` workers (default: every hardware thread) for the baseline host kernels and
 * resolves once each is ready. Use it with setHostWorkerPool(ovqPool, baselinePool).
 */
export async function createBaselineWorkerPool(
  options: { threads?: number } = {},
): Promise<BaselineWorkerPool> {
  if (typeof SharedArrayBuffer !== 'function' || typeof process?.versions?.node !== 'string')
    throw new OvqTfjsInputError(
      'createBaselineWorkerPool',
      'needs Node worker_threads and SharedArrayBuffer (browsers: not supported)',
    );
  const { availableParallelism } = await import('node:os');
  const { Worker } = await import('node:worker_threads');
  const threads = options.threads ?? availableParallelism();
  if (!Number.isInteger(threads) || threads < 1 || threads > 256)
    throw new OvqTfjsInputError(
      'createBaselineWorkerPool: options.threads',
      `got ${String(threads)}; expected an integer in 1…256`,
    );
  const ctrlBuffer = new SharedArrayBuffer(MESSAGE_OFFSET + MESSAGE_BYTES);
  const { url, execArgv } = await workerLocation();
  const workers: Worker[] = [];
  let pool: Pool | null = null;
  const ready = [];
  for (let i = 0; i < threads; i++) {
    const worker = new Worker(url, { execArgv, workerData: { index: i, ctrl: ctrlBuffer } });
    workers.push(worker);
    ready.push(
      new Promise<void>((resolve, reject) => {
        worker.on('message', (m: { type?: string }) => {
          if (m?.type === 'ready') {
            // Idle workers never keep the process alive; they end with it.
            worker.unref();
            resolve();
          }
        });
        worker.on('error', (e) => {
          pool?.markBroken(`worker ${i} failed: ${String(e)}`);
          reject(new Error(`baselines worker ${i} failed to start: ${String(e)}`));
        });
        worker.on('exit', (code) => {
          pool?.markBroken(`worker ${i} exited with code ${code}`);
          reject(new Error(`baselines worker ${i} exited with code ${code}`));
        });
      }),
    );
  }
  try {
    await Promise.all(ready);
    await primeLiveness(workers);
  } catch (error) {
    await Promise.all(workers.map((w) => w.terminate()));
    throw error;
  }
  pool = new Pool(workers, ctrlBuffer);
  POOLS.add(pool);
  return pool;
}

/** The pool's run function, or an error naming `where` when `value` is not a pool of this module. */
export function runOnBaselinePool(value: BaselineWorkerPool, ...args: Parameters<Pool['run']>) {
  if (!POOLS.has(value))
    throw new OvqTfjsInputError(
      'setHostWorkerPool: baselines',
      'expected a pool made by createBaselineWorkerPool of this copy of @ovq/tfjs',
    );
  return (value as Pool).run(...args);
}

/**
 * Test-only: the worker that takes head 0 of the pool's next call throws, exits, or ('kill')
 * stalls inside the call until the pool terminates it from outside.
 */
export function injectBaselineFault(
  pool: BaselineWorkerPool,
  fault: 'throw' | 'exit' | 'kill',
): void {
  (pool as Pool).fault = fault;
}
