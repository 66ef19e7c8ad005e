// The CPU path in a Web Worker: engine/run.ts with @ovq/core's stream, so the page's main thread
// only draws. One run at a time: a new run stops the previous one and waits for it to end.
import { createOvqStream } from '@ovq/core';
import { type RunControl, runOvq } from './engine/run.js';
import type { FromWorker, ToWorker } from './engine/worker-protocol.js';
import { buildInput, viewOf } from './inputs/source.js';

const scope = globalThis as unknown as {
  postMessage(message: FromWorker, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent<ToWorker>) => void) | null;
};
const noGpu = { ctx: null, reason: 'the worker runs the CPU path' } as const;
let current: { id: number; control: RunControl; done: Promise<void> } | null = null;

async function run(id: number, input: ToWorker & { type: 'run' }): Promise<void> {
  const control: RunControl = { stopped: false };
  const previous = current;
  if (previous) previous.control.stopped = true;
  const done = (async () => {
    await previous?.done;
    try {
      // Built here from the bytes or recall settings: the page never holds q/k/v.
      const built = buildInput(input.source);
      scope.postMessage({ type: 'input', id, view: viewOf(built) });
      const { summary, output } = await runOvq(
        built,
        input.config,
        'cpu',
        noGpu,
        (frame) => scope.postMessage({ type: 'frame', id, frame }),
        control,
      );
      const copy = output.slice();
      scope.postMessage({ type: 'done', id, summary, output: copy }, [copy.buffer]);
    } catch (error) {
      scope.postMessage({ type: 'error', id, message: (error as Error).message ?? String(error) });
    }
  })();
  current = { id, control, done };
  await done;
}

scope.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === 'warm') {
    // Compile @ovq/core's kernels and warm the JIT here, before the first run asks for them.
    const s = createOvqStream({ keyDim: 16, valueDim: 16 }, { capacity: 8, chunkSize: 8, beta: 1 });
    const x = new Float32Array(16 * 16).fill(0.5);
    s.append({ q: x, k: x, v: x, seqLen: 16 });
    s.dispose();
  } else if (msg.type === 'stop') {
    if (current?.id === msg.id) current.control.stopped = true;
  } else {
    void run(msg.id, msg);
  }
};
