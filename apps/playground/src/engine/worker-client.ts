// The page's side of the CPU worker: one worker for the page's life (created and warmed at load),
// a run per request; frames of an older run are dropped.
import type { OvqConfig } from '@ovq/core';
import type { InputSource, InputView } from '../inputs/source.js';
import type { Frame, RunControl, RunSummary } from './run.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

let worker: Worker | null = null;
let nextId = 1;
const pending = new Map<
  number,
  {
    onInput: (view: InputView) => void;
    onFrame: (frame: Frame) => void;
    control: RunControl;
    resolve: (r: { summary: RunSummary; output: Float32Array }) => void;
    reject: (e: Error) => void;
  }
>();

/** Starts (once) and warms the worker; null where module workers are unavailable. */
export function cpuWorker(): Worker | null {
  if (worker || typeof Worker === 'undefined') return worker;
  try {
    worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  } catch {
    return null;
  }
  worker.onmessage = (event: MessageEvent<FromWorker>) => {
    const msg = event.data;
    const run = pending.get(msg.id);
    if (!run) return;
    if (msg.type === 'input') {
      run.onInput(msg.view);
    } else if (msg.type === 'frame') {
      run.onFrame(msg.frame);
      // The page's Stop (or a newer run) sets the flag; the worker hears of it here.
      if (run.control.stopped) post({ type: 'stop', id: msg.id });
    } else {
      pending.delete(msg.id);
      if (msg.type === 'done') run.resolve({ summary: msg.summary, output: msg.output });
      else run.reject(new Error(msg.message));
    }
  };
  worker.onerror = (event) => {
    for (const [id, run] of pending) {
      pending.delete(id);
      run.reject(new Error(`CPU worker: ${event.message || 'failed to start'}`));
    }
  };
  post({ type: 'warm' });
  return worker;
}

function post(message: ToWorker): void {
  worker?.postMessage(message);
}

/** Runs in the worker; onInput gets what the page shows of the input before the first frame. */
export function runInWorker(
  source: InputSource,
  config: OvqConfig,
  onInput: (view: InputView) => void,
  onFrame: (frame: Frame) => void,
  control: RunControl,
): Promise<{ summary: RunSummary; output: Float32Array }> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { onInput, onFrame, control, resolve, reject });
    post({ type: 'run', id, source, config });
  });
}
