// Child process of measure/memory.ts: streams one implementation and reports its peak RSS.
import { loadRegistry } from '../registry/index.js';
import type { MemoryMeasurement, MemoryRequest } from './memory.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const maxRss = () => process.resourceUsage().maxRSS * 1024;
const live = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

async function main(): Promise<void> {
  const request = JSON.parse(process.argv[2]) as MemoryRequest;
  const registry = await loadRegistry({ webgpu: request.webgpu, tfjs: false }); // tfjs ops have no streaming API;
  const impl = registry.implementations.find((i) => i.name === request.impl);
  if (!impl?.stream) throw new Error(`${request.impl} has no streaming API here`);
  let baselineRss = 0;
  let heldBaseline = 0;
  let heldMax = 0;
  let pieces = 0;
  const start = performance.now();
  await impl.stream(request.T, request.dims, request.piece, () => {
    // Collect between pieces so the peak reflects live data, not garbage awaiting collection.
    gc();
    const held = live();
    heldMax = Math.max(heldMax, held);
    if (++pieces === 1) {
      baselineRss = maxRss();
      heldBaseline = held;
    }
  });
  const peakRss = maxRss();
  const result: MemoryMeasurement = {
    peakRss,
    baselineRss,
    growth: Math.max(0, peakRss - baselineRss),
    heldMax,
    heldBaseline,
    held: Math.max(0, heldMax - heldBaseline),
    piece: request.piece,
    seconds: (performance.now() - start) / 1000,
  };
  process.send?.({ ok: true, result }, () => process.exit(0));
}

main().catch((error) => {
  process.send?.({ ok: false, error: String(error) }, () => process.exit(1));
});
