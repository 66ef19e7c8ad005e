// Child process of measure/memory.ts: streams one implementation and reports what it held.
import { loadRegistry } from '../registry/index.js';
import type { MemoryMeasurement, MemoryRequest } from './memory.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** Live bytes: heap + array buffers after full GCs, with a tick for V8's concurrent sweeping. */
async function live(): Promise<number> {
  gc();
  await tick();
  gc();
  await tick();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]) as MemoryRequest;
  // tfjs ops have no streaming API, so the child never needs them.
  const registry = await loadRegistry({ webgpu: request.webgpu, tfjs: false });
  const impl = registry.implementations.find((i) => i.name === request.impl);
  if (!impl?.stream) throw new Error(`${request.impl} has no streaming API here`);
  // Warm-up on a throw-away stream: code gets compiled and buffers sized before the baseline.
  await impl.stream(2 * request.piece, request.dims, request.piece, () => {});
  const heldBaseline = await live();
  const rssBaseline = process.memoryUsage().rss;
  let heldMax = heldBaseline;
  let peakRss = rssBaseline;
  const heldByPiece: number[] = [];
  const start = performance.now();
  await impl.stream(request.T, request.dims, request.piece, async () => {
    // RSS before collecting (garbage included: closer to the true peak), held bytes after.
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
    // Minimum of three collections: a late sweep can leave garbage counted in one sample.
    const held = Math.min(await live(), await live(), await live());
    heldByPiece.push(held - heldBaseline);
    heldMax = Math.max(heldMax, held);
  });
  const result: MemoryMeasurement = {
    held: heldMax - heldBaseline,
    heldMax,
    heldBaseline,
    growth: Math.max(0, peakRss - rssBaseline),
    peakRss,
    rssBaseline,
    maxRss: process.resourceUsage().maxRSS * 1024,
    piece: request.piece,
    heldByPiece,
    seconds: (performance.now() - start) / 1000,
  };
  process.send?.({ ok: true, result }, () => process.exit(0));
}

main().catch((error) => {
  process.send?.({ ok: false, error: String(error) }, () => process.exit(1));
});
