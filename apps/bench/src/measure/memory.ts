// Memory, measured in a child process per (implementation, T). The child first streams two pieces
// through a throw-away stream (code compiled, buffers sized), collects garbage and takes a
// baseline; then it streams the T tokens through the implementation's streaming API in fixed
// pieces (inputs generated per piece, so they do not grow with T) and reports:
// - `held`: bytes the stream keeps alive — V8 heap + array buffers after a full GC at each piece
//   end, maximum over pieces, minus the baseline. Exact byte accounting read from the engine rather
//   than from a formula; it includes the state and anything else the stream retains.
// - `growth`: resident-set growth sampled at piece ends before collecting (garbage included), the
//   closest to the peak a streaming user sees; allocator noise of ~1 MiB.
// A fresh process per measurement keeps one run's garbage and heap sizing out of the next.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Dims } from '../registry/types.js';

export type MemoryMeasurement = {
  /** Bytes the stream holds beyond the baseline: max over pieces of live bytes after GC. */
  held: number;
  heldMax: number;
  /** Live bytes (V8 heap + array buffers) after a warm-up stream and a GC. */
  heldBaseline: number;
  /** Peak sampled RSS (at piece ends, before GC) minus the RSS at the baseline. */
  growth: number;
  peakRss: number;
  rssBaseline: number;
  /** The kernel's high-water mark for the whole child (includes loading the code). */
  maxRss: number;
  piece: number;
  /** Live bytes minus the baseline after each piece (piece i ends at (i+1)·piece tokens). */
  heldByPiece?: number[];
  seconds: number;
};

export type MemoryRequest = {
  impl: string;
  T: number;
  dims: Dims;
  piece: number;
  webgpu: boolean;
};

const CHILD = fileURLToPath(new URL('./memory-child.js', import.meta.url));

/** False when running from TypeScript sources (tests): the child needs the built dist/. */
export function memoryProbeAvailable(): boolean {
  return existsSync(CHILD);
}

export function measureMemory(
  request: MemoryRequest,
  timeoutSeconds: number,
): Promise<MemoryMeasurement> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD, [JSON.stringify(request)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr += String(d);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`memory probe exceeded ${timeoutSeconds}s`));
    }, timeoutSeconds * 1000);
    child.on('message', (m) => {
      clearTimeout(timer);
      const msg = m as { ok: boolean; result?: MemoryMeasurement; error?: string };
      if (msg.ok && msg.result) resolve(msg.result);
      else reject(new Error(msg.error ?? 'memory probe failed'));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`memory probe exited with ${code}: ${stderr.trim().slice(-300)}`));
    });
  });
}
