// A baselines pool worker: takes heads of the current call from the shared counter until none is
// left and runs each with the same HostMixer code as the calling thread would (so every pool size
// gives the same bits), writing into the shared arena. Reports done, or the first error, through
// the control block; never throws out of a call.
import { parentPort, workerData } from 'node:worker_threads';
import {
  decayLinearMixer,
  gatedDeltaNetMixer,
  kvmMixer,
  linearMixer,
  softmaxMixer,
  vqMixer,
} from '../kernels/baselines.js';
import type { HeadData, HostMixer } from '../kernels/host-mixer.js';
import { type BaselineJob, CTRL, MESSAGE_BYTES, MESSAGE_OFFSET } from './protocol.js';

const MIXERS = new Map<string, HostMixer<unknown>>(
  [softmaxMixer, linearMixer, decayLinearMixer, gatedDeltaNetMixer, vqMixer, kvmMixer].map((m) => [
    m.kernelName,
    m as HostMixer<unknown>,
  ]),
);

const { index, ctrl: ctrlBuffer } = workerData as { index: number; ctrl: SharedArrayBuffer };
const ctrl = new Int32Array(ctrlBuffer, 0, MESSAGE_OFFSET / 4);
const message = new Uint8Array(ctrlBuffer, MESSAGE_OFFSET, MESSAGE_BYTES);
let inJob = false;

function report(code: 1 | 2, text: string): void {
  if (Atomics.compareExchange(ctrl, CTRL.error, 0, code) !== 0) return;
  const bytes = new TextEncoder().encode(text).subarray(0, MESSAGE_BYTES);
  message.set(bytes);
  Atomics.store(ctrl, CTRL.messageLength, bytes.length);
}

function finish(): void {
  inJob = false;
  Atomics.add(ctrl, CTRL.done, 1);
  Atomics.notify(ctrl, CTRL.done);
}

function runJob(job: BaselineJob): void {
  inJob = true;
  let bh = -1;
  try {
    const mixer = MIXERS.get(job.kernelName);
    if (!mixer) throw new Error(`no baseline kernel named ${job.kernelName}`);
    const config = mixer.parseConfig(job.config);
    const { batch, heads, seqLen: T, keyDim: dk, valueDim: dv, offsets: o } = job;
    const f = new Float32Array(job.arena);
    const view = (at: number, n: number, i: number) => f.subarray(at + i * n, at + (i + 1) * n);
    for (;;) {
      if (Atomics.load(ctrl, CTRL.error) !== 0) break;
      bh = Atomics.add(ctrl, CTRL.next, 1);
      if (bh >= batch * heads) break;
      if (bh === 0 && job.fault === 'throw') throw new Error('injected fault');
      if (bh === 0 && job.fault === 'exit') process.exit(3);
      if (bh === 0 && job.fault === 'kill') {
        Atomics.store(ctrl, CTRL.faulted, index + 1);
        Atomics.notify(ctrl, CTRL.faulted);
        Atomics.wait(ctrl, CTRL.faulted, index + 1); // until terminated
      }
      const h = bh % heads;
      const head: HeadData = {
        q: view(o.q, T * dk, bh),
        k: view(o.k, T * dk, bh),
        v: view(o.v, T * dv, bh),
        seqLen: T,
        keyDim: dk,
        valueDim: dv,
        head: h,
        extras: job.extras.map((e, i) =>
          e.kind === 'perHead' ? view(o.extras[i], e.width, h) : view(o.extras[i], T, bh),
        ),
      };
      if (job.kind === 'forward') {
        f.set(mixer.forward(head, config), o.out + bh * T * dv);
      } else {
        const g = mixer.backward(head, config, view(o.dy, T * dv, bh));
        f.set(g.dq, o.dq + bh * T * dk);
        f.set(g.dk, o.dk + bh * T * dk);
        f.set(g.dv, o.dv + bh * T * dv);
        job.extras.forEach((e, i) => {
          const n = e.kind === 'perHead' ? e.width : T;
          f.set(g.extras[i], o.dExtras[i] + bh * n);
        });
      }
    }
  } catch (error) {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    report(1, `worker ${index} failed on head ${bh}: ${text}`);
  } finally {
    finish();
  }
}

// A worker that dies mid-call still releases the caller: the exit handler runs on this thread.
process.on('exit', (code) => {
  if (inJob) {
    report(2, `worker ${index} exited with code ${code} during the call`);
    finish();
  }
});
parentPort?.on('message', (job: BaselineJob) => runJob(job));
parentPort?.postMessage({ type: 'ready' });
