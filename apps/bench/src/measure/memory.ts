// Memory, measured in a child process per (implementation, T): the child streams T tokens through
// the implementation's streaming API in fixed pieces (inputs generated per piece, so they do not
// grow with T) and reports two things:
// - `held`: bytes the stream keeps alive (V8 heap + array buffers after a full GC, the maximum over
//   pieces) minus the same after the first piece: exact byte accounting of the state, read from the
//   engine rather than from a formula; a KV cache grows with T, a fixed state stays at ~0.
// - `growth`: the kernel's high-water mark of the resident set (maxRSS) minus its value after the
//   first piece: the true peak, including transient buffers, but with allocator noise of ~1-2 MiB.
// A child per measurement keeps one run's garbage and heap sizing from inflating the next.
import { fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Dims } from '../registry/types.js';

export type MemoryMeasurement = {
  /** maxRSS of the child at the end, bytes. */
  peakRss: number;
  /** maxRSS after the first piece (code, JIT, one piece of buffers), bytes. */
  baselineRss: number;
  /** peakRss − baselineRss. */
  growth: number;
  /** Live heap + array-buffer bytes after GC: the maximum over pieces, and after the first piece. */
  heldMax: number;
  heldBaseline: number;
  /** heldMax − heldBaseline. */
  held: number;
  piece: number;
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
