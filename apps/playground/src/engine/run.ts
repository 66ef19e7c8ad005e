// One run: the input streamed through OVQ in pieces, yielding to the browser between time slices
// (about 16 ms of work each) so the page keeps drawing, with a frame handed to the UI at most
// every FRAME_MS and after the first piece (the "first result").
import { type OvqConfig, type OvqState, resolveOvqConfig } from '@ovq/core';
import type { PlaygroundInput } from '../inputs/types.js';
import { createBackend, type GpuProbe, type PathName, type Piece } from './backend.js';
import { probeFacts, type Retrieval, readOvq, Yardsticks } from './recall.js';

/** What a frame shows of the dictionary: plain arrays, so a frame can leave a Web Worker. */
export type DictSnapshot = {
  size: number;
  keyDim: number;
  pendingCount: number;
  normalize: boolean;
  counts: Float64Array;
  /** [size, keyDim] */
  centroidKeys: Float64Array;
};

export function snapshot(state: OvqState): DictSnapshot {
  return {
    size: state.size,
    keyDim: state.keyDim,
    pendingCount: state.pendingCount,
    normalize: state.config.normalize,
    counts: Float64Array.from(state.counts),
    centroidKeys: Float64Array.from(state.centroidKeys),
  };
}

export type Frame = {
  path: PathName;
  tokens: number;
  state: DictSnapshot;
  /** Read weights of the last token's query over the dictionary rows then the pending tokens. */
  weights: Float64Array;
  /** The last token's query (as given; the plot normalises). */
  query: Float32Array;
  /** Rows spawned since the previous frame; tokens absorbed into rows that already existed. */
  spawned: number;
  merged: number;
  elapsedMs: number;
  recall: Retrieval | null;
  kvmNumbers: number | null;
  done: boolean;
};

export type RunSummary = {
  path: PathName;
  input: PlaygroundInput['kind'];
  seqLen: number;
  tokens: number;
  size: number;
  counts: number[];
  /** Σ of every output element (float64 sum), and of |output|. */
  outputSum: number;
  outputAbsSum: number;
  firstResultMs: number;
  totalMs: number;
  tokensPerSecond: number;
  /**
   * CPU path: the longest stretch of work between two yields (in the worker when it runs there;
   * on WebGPU the stretches include waiting for the GPU, so null there).
   */
  longestSliceMs: number | null;
  recall: { seen: number; ovq: number[]; softmax: number[]; kvm: number[] } | null;
  config: OvqConfig;
  stopped: boolean;
};

const SLICE_MS = 16;
const FRAME_MS = 80;

/** Yields to the event loop without setTimeout's 4 ms clamp. */
export function yieldToBrowser(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}

function slicePiece(input: PlaygroundInput, start: number, end: number): Piece {
  const { keyDim: dk, valueDim: dv } = input;
  return {
    q: input.q.subarray(start * dk, end * dk),
    k: input.k.subarray(start * dk, end * dk),
    v: input.v.subarray(start * dv, end * dv),
    seqLen: end - start,
  };
}

function indices(flags: boolean[]): number[] {
  return flags.flatMap((f, i) => (f ? [i] : []));
}

export type RunControl = { stopped: boolean };

export async function runOvq(
  input: PlaygroundInput,
  config: OvqConfig,
  path: PathName,
  gpu: GpuProbe,
  onFrame: (frame: Frame) => void,
  control: RunControl = { stopped: false },
): Promise<{ summary: RunSummary; output: Float32Array }> {
  const resolved = resolveOvqConfig(config); // throws a named error before anything starts
  const dims = { keyDim: input.keyDim, valueDim: input.valueDim };
  const backend = createBackend(path, gpu, dims, config);
  const yard = input.facts ? new Yardsticks(dims, config) : null;
  const T = input.seqLen;
  const output = new Float32Array(T * input.valueDim);
  // GPU appends pay a submit and a read-back each: larger pieces.
  const pieceLen = Math.max(resolved.chunkSize, path === 'webgpu' ? 1024 : 256);
  const t0 = performance.now();
  let firstResultMs = -1;
  let longestSliceMs = 0;
  let lastFrame = Number.NEGATIVE_INFINITY;
  let lastSize = 0;
  let lastAbsorbed = 0;
  let tokens = 0;
  const frame = async (done: boolean): Promise<{ state: OvqState; recall: Retrieval | null }> => {
    const state = await backend.state();
    const last = tokens - 1;
    const query = input.q.slice(last * input.keyDim, (last + 1) * input.keyDim);
    const { weights } = readOvq(state, query);
    const absorbed = state.tokensAbsorbed;
    const spawned = state.size - lastSize;
    const merged = absorbed - lastAbsorbed - spawned;
    lastSize = state.size;
    lastAbsorbed = absorbed;
    const recall = yard && input.facts ? probeFacts(input.facts, tokens, state, yard) : null;
    onFrame({
      path,
      tokens,
      state: snapshot(state),
      weights,
      query,
      spawned,
      merged,
      elapsedMs: performance.now() - t0,
      recall,
      kvmNumbers: yard ? yard.kvmStateSize(dims, tokens) : null,
      done,
    });
    if (firstResultMs < 0) firstResultMs = performance.now() - t0;
    lastFrame = performance.now();
    return { state, recall };
  };
  try {
    let sliceStart = performance.now();
    while (tokens < T && !control.stopped) {
      // The first piece is one chunk, so the first frame comes as early as possible.
      const end = Math.min(T, tokens + (tokens === 0 ? resolved.chunkSize : pieceLen));
      const piece = slicePiece(input, tokens, end);
      output.set(await backend.append(piece), tokens * input.valueDim);
      yard?.append(piece, dims);
      tokens = end;
      const now = performance.now();
      if (firstResultMs < 0 || (now - lastFrame >= FRAME_MS && tokens < T)) await frame(false);
      if (performance.now() - sliceStart >= SLICE_MS) {
        longestSliceMs = Math.max(longestSliceMs, performance.now() - sliceStart);
        await yieldToBrowser();
        sliceStart = performance.now();
      }
    }
    const { state, recall } = await frame(true);
    longestSliceMs = Math.max(longestSliceMs, performance.now() - sliceStart);
    const totalMs = performance.now() - t0;
    let outputSum = 0;
    let outputAbsSum = 0;
    for (let i = 0; i < tokens * input.valueDim; i++) {
      outputSum += output[i];
      outputAbsSum += Math.abs(output[i]);
    }
    const summary: RunSummary = {
      path,
      input: input.kind,
      seqLen: T,
      tokens,
      size: state.size,
      counts: Array.from(state.counts),
      outputSum,
      outputAbsSum,
      firstResultMs,
      totalMs,
      tokensPerSecond: tokens / (totalMs / 1000),
      longestSliceMs: path === 'cpu' ? longestSliceMs : null,
      recall: recall && {
        seen: recall.seen,
        ovq: indices(recall.ovq),
        softmax: indices(recall.softmax),
        kvm: indices(recall.kvm),
      },
      config,
      stopped: control.stopped,
    };
    return { summary, output: output.subarray(0, tokens * input.valueDim) };
  } finally {
    backend.dispose();
  }
}
