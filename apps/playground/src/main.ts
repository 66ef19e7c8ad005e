// The page: reads the controls, builds the input, runs it (engine/run.ts) and draws each frame.
// Test hook: window.__ovqPlayground (run, last summary, full output, WebGPU status).
import type { OvqConfig } from '@ovq/core';
import { type BackendChoice, createBackendChoice, describeGpu } from './engine/choice.js';
import { formatBytes, memoryNumbers } from './engine/memory.js';
import type { Frame, RunControl, RunSummary } from './engine/run.js';
import { cpuWorker, runInWorker } from './engine/worker-client.js';
import { BROWN_SAMPLE } from './inputs/brown-sample.js';
import { textBytes } from './inputs/project.js';
import type { InputSource, InputView } from './inputs/source.js';
import { drawCounts, drawProjection } from './ui/charts.js';
import { fmt } from './ui/format.js';

const MAX_TEXT_BYTES = 65536;

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page: #${id} missing`);
  return el as T;
};
const form = $<HTMLFormElement>('controls');
const runButton = $<HTMLButtonElement>('run');
const stopButton = $<HTMLButtonElement>('stop');
const errorBox = $('error');
const number = (id: string) => Number($<HTMLInputElement>(id).value);
const select = (id: string) => $<HTMLSelectElement>(id).value;

/** The OVQ config the controls describe (validated by @ovq/core when the run starts). */
function configFromControls(): OvqConfig {
  const growth = select('growth');
  return {
    capacity: number('capacity'),
    chunkSize: number('chunk'),
    beta: number('beta'),
    growth:
      growth === 'sqrt'
        ? { kind: 'sqrt', scale: 1 }
        : growth === 'log'
          ? { kind: 'log', alpha: 16 }
          : (growth as 'saturating' | 'fixed' | 'full'),
    spawn: select('spawn') as 'farthest' | 'first' | 'random',
    read: select('read') as 'dot' | 'gaussian',
  };
}

/** What to stream, as the controls say: bytes or recall settings (built where the run runs). */
function sourceFromControls(): InputSource {
  const kind = (form.elements.namedItem('input') as RadioNodeList).value;
  if (kind === 'recall') {
    const seqLen = number('recall-len');
    if (seqLen > MAX_TEXT_BYTES) {
      throw new Error(`recall length: got ${seqLen}; expected at most ${fmt(MAX_TEXT_BYTES)}`);
    }
    return { kind: 'recall', seqLen, facts: number('recall-facts') };
  }
  if (kind === 'text') {
    const text = $<HTMLTextAreaElement>('text').value;
    const bytes = textBytes(text, MAX_TEXT_BYTES);
    const all = new TextEncoder().encode(text).length;
    const cut = all > bytes.length ? ` (the first of ${fmt(all)})` : '';
    if (bytes.length === 0) {
      throw new Error('text: got an empty text; expected at least one byte to stream');
    }
    // A cut text is a view of the whole encoding: copy it, or postMessage clones all of it.
    const own = cut ? bytes.slice() : bytes;
    return { kind: 'text', bytes: own, label: `your text: ${fmt(bytes.length)} bytes${cut}` };
  }
  return {
    kind: 'sample',
    bytes: textBytes(BROWN_SAMPLE, MAX_TEXT_BYTES),
    label: 'Brown corpus sample',
  };
}

function showContext(input: InputView, tokens: number): void {
  $('context-title').textContent = `Where the stream is (${input.label})`;
  const box = $('context');
  box.replaceChildren();
  if (!input.bytes) {
    box.textContent = `${input.label}: token ${fmt(tokens)} of ${fmt(input.seqLen)}`;
    return;
  }
  const dec = new TextDecoder();
  const at = Math.max(0, tokens - 1);
  const before = dec.decode(input.bytes.subarray(Math.max(0, at - 80), at));
  const mark = document.createElement('mark');
  mark.textContent = dec.decode(input.bytes.subarray(at, at + 1));
  box.append(before, mark);
}

function showRecall(frame: Frame, input: InputView): void {
  const section = $('recall');
  const facts = input.facts;
  section.hidden = !facts || !frame.recall;
  if (!facts || !frame.recall) return;
  const r = frame.recall;
  const total = (xs: boolean[]) => xs.filter(Boolean).length;
  $('recall-totals').textContent =
    `${r.seen} of ${facts.count} facts streamed. Retrievable: OVQ ${total(r.ovq)}, softmax ${total(r.softmax)}, KVM ${total(r.kvm)}.`;
  const body = $('recall-rows');
  const rows: HTMLTableRowElement[] = [];
  for (let i = 0; i < facts.count; i++) {
    const tr = document.createElement('tr');
    const seen = facts.positions[i] < frame.tokens;
    const cells = [String(i + 1), fmt(facts.positions[i])];
    tr.append(...cells.map((c) => Object.assign(document.createElement('td'), { textContent: c })));
    for (const ok of [r.ovq[i], r.softmax[i], r.kvm[i]]) {
      const td = document.createElement('td');
      td.textContent = seen ? (ok ? '✓ yes' : '✗ no') : '· not yet';
      if (seen) td.className = ok ? 'yes' : 'no';
      tr.append(td);
    }
    rows.push(tr);
  }
  body.replaceChildren(...rows);
}

let freshFrom = 0;

function showFrame(frame: Frame, input: InputView, config: OvqConfig): void {
  const { state } = frame;
  const mem = memoryNumbers(input, state.size, config.chunkSize, frame.tokens);
  freshFrom = state.size - Math.max(0, frame.spawned);
  $('stat-path').textContent = frame.path === 'webgpu' ? 'WebGPU' : 'CPU (@ovq/core)';
  $('stat-tokens').textContent = `${fmt(frame.tokens)} / ${fmt(input.seqLen)}`;
  $('stat-rows').textContent = `${fmt(state.size)} of ${fmt(config.capacity)}`;
  $('stat-speed').textContent = fmt(frame.tokens / (frame.elapsedMs / 1000));
  $('stat-ovq-mem').textContent = `${fmt(mem.ovq)} numbers (${formatBytes(mem.ovq)})`;
  $('stat-kv-mem').textContent =
    `${fmt(mem.kvCache)} numbers (${formatBytes(mem.kvCache)}), ${fmt(mem.kvCache / mem.ovq, 1)}× OVQ` +
    (frame.kvmNumbers === null ? '' : `; KVM at OVQ's budget: ${fmt(frame.kvmNumbers)}`);
  $('events').textContent =
    `Since the last frame: ${frame.spawned} rows spawned, ${frame.merged} tokens absorbed into existing rows; ${state.pendingCount} tokens pending.`;
  drawCounts($<HTMLCanvasElement>('counts'), state, freshFrom);
  drawProjection($<HTMLCanvasElement>('projection'), state, frame.query, frame.weights, freshFrom);
  const counts = state.counts;
  const top = Array.from(counts.keys())
    .sort((a, b) => counts[b] - counts[a])
    .slice(0, 3);
  $('counts-summary').textContent =
    `${state.size} rows; largest: ${top.map((i) => `row ${i + 1} (${fmt(counts[i])})`).join(', ')}.`;
  const w = frame.weights;
  let best = 0;
  for (let i = 1; i < w.length; i++) if (w[i] > w[best]) best = i;
  $('proj-summary').textContent =
    w.length === 0
      ? ''
      : best < state.size
        ? `The current query reads row ${best + 1} most (weight ${fmt(w[best], 2)}).`
        : `The current query reads a pending token most (weight ${fmt(w[best], 2)}).`;
  showContext(input, frame.tokens);
  showRecall(frame, input);
}

/** A run as the page saw it: the engine's summary plus what the main thread measured. */
export type PageSummary = RunSummary & {
  /** The CPU path ran in the Web Worker (the main thread only drew). */
  worker: boolean;
  /** Run start → first frame drawn on the page, and that moment since navigation start. */
  firstFrameMs: number;
  firstFrameSinceLoadMs: number;
  /** The longest main-thread task during the run (the browser reports tasks ≥ 50 ms; 0: none). */
  longestTaskMs: number;
  /** The longest time the page spent drawing one frame (stats, charts, recall table). */
  longestDrawMs: number;
};

/** Watches the main thread's long tasks from now until the returned function is called. */
function watchLongTasks(): () => Promise<number> {
  let longest = 0;
  const take = (entries: PerformanceEntry[]) => {
    for (const e of entries) longest = Math.max(longest, e.duration);
  };
  const observer = PerformanceObserver.supportedEntryTypes?.includes('longtask')
    ? new PerformanceObserver((list) => take(list.getEntries()))
    : null;
  observer?.observe({ type: 'longtask' });
  return async () => {
    // Entries arrive asynchronously: give the browser a turn, then collect what is left.
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (observer) {
      take(observer.takeRecords());
      observer.disconnect();
    }
    return longest;
  };
}

type Hook = {
  runs: number;
  running: boolean;
  last: PageSummary | null;
  lastError: string | null;
  readonly output: number[];
  gpu: { available: boolean; software: boolean; detail: string } | null;
  /** The longest main-thread task since navigation, page start-up included (≥ 50 ms; 0: none). */
  longestTaskSinceLoadMs: number;
  run(): Promise<PageSummary>;
};

let lastOutput: Float32Array = new Float32Array(0);
const hook: Hook = {
  runs: 0,
  running: false,
  last: null,
  lastError: null,
  // Copied into a plain array only when asked for (tests), not after every run.
  get output() {
    return Array.from(lastOutput);
  },
  gpu: null,
  longestTaskSinceLoadMs: 0,
  run: () => start(),
};
// Every main-thread long task since navigation (buffered: those before this script ran too).
if (PerformanceObserver.supportedEntryTypes?.includes('longtask')) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      hook.longestTaskSinceLoadMs = Math.max(hook.longestTaskSinceLoadMs, e.duration);
    }
  }).observe({ type: 'longtask', buffered: true });
}
(globalThis as unknown as { __ovqPlayground: Hook }).__ovqPlayground = hook;

let control: RunControl | null = null;

async function start(): Promise<PageSummary> {
  if (control) control.stopped = true;
  const mine: RunControl = { stopped: false };
  control = mine;
  errorBox.textContent = '';
  runButton.disabled = true;
  stopButton.disabled = false;
  hook.running = true;
  try {
    const config = configFromControls();
    const source = sourceFromControls();
    const { path, note } = await createBackendChoice(select('backend') as BackendChoice);
    const worker = path === 'cpu' ? cpuWorker() : null;
    $('path').textContent = worker ? note.replace(/\.$/, ', in a Web Worker.') : note;
    const stopWatching = watchLongTasks();
    const t0 = performance.now();
    let firstFrameAt = -1;
    let longestDrawMs = 0;
    let input: InputView | null = null;
    const onInput = (view: InputView) => {
      input = view;
    };
    const onFrame = (frame: Frame) => {
      if (control !== mine || !input) return;
      const drawStart = performance.now();
      showFrame(frame, input, config);
      longestDrawMs = Math.max(longestDrawMs, performance.now() - drawStart);
      if (firstFrameAt < 0) {
        firstFrameAt = performance.now();
        $('stat-first').textContent = `${fmt(firstFrameAt - t0)} ms`;
      }
    };
    // The GPU path (and the CPU path without module workers) runs here, loaded on demand.
    const { summary: engine, output } = worker
      ? await runInWorker(source, config, onInput, onFrame, mine)
      : await (await import('./engine/page-run.js')).runOnPage(
          source,
          config,
          path,
          onInput,
          onFrame,
          mine,
        );
    const summary: PageSummary = {
      ...engine,
      worker: worker !== null,
      firstFrameMs: firstFrameAt - t0,
      firstFrameSinceLoadMs: firstFrameAt,
      longestTaskMs: await stopWatching(),
      longestDrawMs,
    };
    if (control !== mine) return summary; // a newer run replaced this one
    $('stat-checksum').textContent = summary.outputSum.toPrecision(8);
    $('stat-longest').textContent =
      summary.longestTaskMs > 0 ? `${fmt(summary.longestTaskMs)} ms` : 'none ≥ 50 ms';
    $('stat-speed').textContent = fmt(summary.tokensPerSecond);
    hook.last = summary;
    lastOutput = output;
    hook.runs++;
    return summary;
  } catch (error) {
    const message = (error as Error).message ?? String(error);
    if (control === mine) {
      errorBox.textContent = message;
      hook.lastError = message;
    }
    throw error;
  } finally {
    if (control === mine) {
      control = null;
      runButton.disabled = false;
      stopButton.disabled = true;
      hook.running = false;
    }
  }
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  start().catch(() => {
    // shown in #error already
  });
});
stopButton.addEventListener('click', () => {
  if (control) control.stopped = true;
});
$<HTMLTextAreaElement>('text').addEventListener('input', () => {
  const radio = form.querySelector<HTMLInputElement>('input[name="input"][value="text"]');
  if (radio) radio.checked = true;
});

// Start the CPU worker now: it compiles @ovq/core's kernels while the page looks for WebGPU.
cpuWorker();
// Draw empty charts once, in a task of their own after start-up: the first canvas sizing and
// context are slow, and would otherwise land in the first frame of the first run.
setTimeout(() => {
  const empty = {
    size: 0,
    keyDim: 16,
    pendingCount: 0,
    normalize: true,
    counts: new Float64Array(0),
    centroidKeys: new Float64Array(0),
  };
  drawCounts($<HTMLCanvasElement>('counts'), empty, 0);
  drawProjection(
    $<HTMLCanvasElement>('projection'),
    empty,
    new Float32Array(16),
    new Float64Array(0),
    0,
  );
}, 0);
// The adapter request in a task of its own too (its first call waits on the GPU process: ~30 ms
// of the start-up task on the loaded VM when it ran there).
setTimeout(() => void describeGpu().then(showGpu), 0);
function showGpu(gpu: Awaited<ReturnType<typeof describeGpu>>): void {
  hook.gpu = gpu;
  $('path').textContent = !gpu.available
    ? `WebGPU not available (${gpu.detail}): runs use the CPU path (@ovq/core).`
    : gpu.software
      ? `WebGPU adapter: ${gpu.detail}. Automatic runs use the CPU path, which is faster than a software adapter; choose “WebGPU” to use it.`
      : `WebGPU available: ${gpu.detail}. Runs use the GPU unless you choose CPU.`;
  if (new URLSearchParams(location.search).get('autorun') !== '0') {
    // In a task of its own, so the run's long-task watch does not count start-up work.
    setTimeout(() => {
      start().catch(() => {
        // shown in #error already
      });
    }, 0);
  }
}
