// A pool worker (Node worker_threads or a browser module Worker): takes heads of the current job
// from the shared counter until none is left, runs each with the same code as the no-pool path,
// and reports done (or the first error) through the control block. Never throws out of a job.
import { type HeadStates, runBatchedHeads } from '../chunked/batched.js';
import { deserializeOvqState, serializeOvqState } from '../ovq/serialize.js';
import { setOvqKernels } from '../wasm/simd.js';
import {
  CTRL,
  type InitMessage,
  type JobMessage,
  MESSAGE_BYTES,
  MESSAGE_OFFSET,
} from './protocol.js';

type Port = { postMessage(message: unknown): void };

let index = -1;
let ctrl: Int32Array | null = null;
let message: Uint8Array | null = null;
let inJob = false;

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

function runJob(m: JobMessage): void {
  const c = ctrl as Int32Array;
  inJob = true;
  let head = -1;
  try {
    const { job, statesIn, statesOut, stateIndex, slot } = m;
    setOvqKernels(m.kernels);
    const states: HeadStates = {
      load: (h) =>
        statesIn === null
          ? undefined
          : deserializeOvqState(
              statesIn.slice(stateIndex[3 * h], stateIndex[3 * h] + stateIndex[3 * h + 1]),
            ),
      store: (h, ws) => {
        const bytes = serializeOvqState(ws.toState());
        if (statesOut === null || bytes.length > slot) {
          throw new Error(`final state of ${bytes.length} bytes exceeds its ${slot}-byte slot`);
        }
        statesOut.set(bytes, h * slot);
        stateIndex[3 * h + 2] = bytes.length;
      },
    };
    runBatchedHeads(job, states, () => {
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
    });
  } catch (error) {
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
