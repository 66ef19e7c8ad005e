// A pool worker (Node worker_threads or a browser module Worker): scans its share of the inputs
// for non-finite values, then takes heads of the current job from the shared counter until none
// is left, runs each with the same code as the no-pool path (in a workspace kept between calls),
// and reports done (or the first error) through the control block. Never throws out of a job.
import {
  type BatchedJob,
  type HeadStates,
  runBatchedHeads,
  WorkspaceCache,
} from '../chunked/batched.js';
import { setOvqKernels } from '../wasm/simd.js';
import {
  CTRL,
  type InitMessage,
  type JobMessage,
  MESSAGE_BYTES,
  MESSAGE_OFFSET,
} from './protocol.js';
import { readRows, writeFinal } from './state-rows.js';

type Port = { postMessage(message: unknown): void };

let index = -1;
let ctrl: Int32Array | null = null;
let message: Uint8Array | null = null;
let inJob = false;
/** This worker's workspace, kept between calls (a call allocates nothing when it fits). */
const cache = new WorkspaceCache();

function attach(i: number, buffer: SharedArrayBuffer): void {
  index = i;
  ctrl = new Int32Array(buffer, 0, MESSAGE_OFFSET / 4);
  message = new Uint8Array(buffer, MESSAGE_OFFSET, MESSAGE_BYTES);
}

/** Records the first error of the job (later ones are dropped). */
function report(code: 1 | 2, text: string): void {
  if (!ctrl || !message) return;
  if (Atomics.compareExchange(ctrl, CTRL.error, 0, code) !== 0) return;
  const bytes = new TextEncoder().encode(text).subarray(0, MESSAGE_BYTES);
  message.set(bytes);
  Atomics.store(ctrl, CTRL.messageLength, bytes.length);
}

function finish(): void {
  if (!ctrl) return;
  inJob = false;
  Atomics.add(ctrl, CTRL.done, 1);
  Atomics.notify(ctrl, CTRL.done);
}

/** Whether x[at … at+n) are all finite (x − x is NaN for ±∞ and NaN). */
function finite(x: ArrayLike<number>, at: number, n: number): boolean {
  for (let i = at; i < at + n; i++) {
    const v = x[i];
    if (v - v !== 0) return false;
  }
  return true;
}

/** Whether head h's inputs are all finite. */
function headFinite(job: BatchedJob, h: number): boolean {
  const { T, dk, dv } = job;
  return (
    finite(job.q, h * T * dk, T * dk) &&
    finite(job.k, h * T * dk, T * dk) &&
    finite(job.v, h * T * dv, T * dv) &&
    (job.dOutput === null || finite(job.dOutput, h * T * dv, T * dv))
  );
}

/**
 * Scans heads from the shared counter, then waits until every worker has scanned (so no output
 * is written for a bad input). Returns whether the job may run: no bad value, no failed worker.
 */
function scanInputs(m: JobMessage, c: Int32Array): boolean {
  const { job, threads } = m;
  for (;;) {
    if (Atomics.load(c, CTRL.bad) !== 0 || Atomics.load(c, CTRL.error) !== 0) break;
    const h = Atomics.add(c, CTRL.scanNext, 1);
    if (h >= job.heads) break;
    if (!headFinite(job, h)) {
      Atomics.store(c, CTRL.bad, 1);
      break;
    }
  }
  let arrived = Atomics.add(c, CTRL.scanned, 1) + 1;
  if (arrived >= threads) Atomics.notify(c, CTRL.scanned);
  while (arrived < threads) {
    // A worker that died before the barrier sets error (the caller's liveness poll): stop waiting.
    if (Atomics.load(c, CTRL.error) !== 0) return false;
    Atomics.wait(c, CTRL.scanned, arrived, 50);
    arrived = Atomics.load(c, CTRL.scanned);
  }
  return Atomics.load(c, CTRL.bad) === 0 && Atomics.load(c, CTRL.error) === 0;
}

function runJob(m: JobMessage): void {
  const c = ctrl as Int32Array;
  inJob = true;
  let head = -1;
  try {
    const { job, statesIn, statesInAt, statesOut, layout } = m;
    setOvqKernels(m.kernels);
    if (m.scan && !scanInputs(m, c)) return;
    const states: HeadStates = {
      load: (h) =>
        statesIn === null || statesInAt === null
          ? undefined
          : readRows(statesIn, statesInAt[h], job.dk, job.dv),
      store: (h, ws) => {
        if (statesOut === null || layout === null) throw new Error('no room for the final states');
        writeFinal(ws, statesOut[h], layout);
      },
    };
    const next = () => {
      if (Atomics.load(c, CTRL.error) !== 0) return (head = -1);
      head = Atomics.add(c, CTRL.next, 1);
      if (head === 0 && m.fault === 'throw') throw new Error('injected fault');
      if (head === 0 && m.fault === 'exit') process.exit(3);
      if (head === 0 && m.fault === 'kill') {
        Atomics.store(c, CTRL.faulted, index + 1);
        Atomics.notify(c, CTRL.faulted);
        Atomics.wait(c, CTRL.faulted, index + 1); // until terminated
      }
      return head < job.heads ? head : (head = -1);
    };
    runBatchedHeads(job, states, next, cache);
  } catch (error) {
    cache.clear();
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    report(1, `worker ${index} failed on head ${head}: ${text}`);
  } finally {
    finish();
  }
}

function handle(data: unknown, port: Port): void {
  const m = data as JobMessage | InitMessage;
  if (m?.type === 'init') {
    attach(m.index, m.ctrl);
    port.postMessage({ type: 'ready' });
  } else if (m?.type === 'job') {
    runJob(m);
  }
}

const isNode =
  typeof process !== 'undefined' &&
  typeof (process as { versions?: { node?: string } }).versions?.node === 'string';

if (isNode) {
  const wt = (await import('node:worker_threads' as string)) as {
    parentPort: Port & { on(event: 'message', listener: (data: unknown) => void): void };
    workerData: { index: number; ctrl: SharedArrayBuffer };
  };
  attach(wt.workerData.index, wt.workerData.ctrl);
  // A worker that dies mid-job (process.exit, an uncaught error outside the job) still releases
  // the caller: the exit handler runs on this thread before it stops.
  process.on('exit', (code) => {
    if (inJob) {
      report(2, `worker ${index} exited with code ${code} during the call`);
      finish();
    }
  });
  wt.parentPort.on('message', (data) => handle(data, wt.parentPort));
  wt.parentPort.postMessage({ type: 'ready' });
} else {
  const scope = globalThis as unknown as Port & {
    addEventListener(type: 'message', listener: (e: { data: unknown }) => void): void;
  };
  scope.addEventListener('message', (e) => handle(e.data, scope));
}
