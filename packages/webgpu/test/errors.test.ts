// Bad input gives a clear error (naming the argument, the value and what was expected): wrong
// buffer sizes, a lost device, limits too small, disposed buffers. Also: pipelines are compiled
// once, and every buffer an entry point creates is destroyed.
import { describe, expect, it } from 'vitest';
import { acquireDevice, getGpu } from '../src/device/acquire.js';
import { GpuContext } from '../src/gpu/context.js';
import { attentionForward } from '../src/ops/attention.js';
import { ovqAttention } from '../src/ovq/api.js';
import { ovqForwardGpu } from '../src/ovq/forward.js';
import { createGpuOvqState } from '../src/ovq/state.js';
import { present, routeOptions } from './adapters.js';

const config = { chunkSize: 7, capacity: 8, beta: 4 };
const dims = { batchHeads: 3, seqLen: 10, keyDim: 8, valueDim: 4 };
const input = () => ({
  ...dims,
  q: new Float32Array(3 * 10 * 8).fill(0.5),
  k: new Float32Array(3 * 10 * 8).fill(0.25),
  v: new Float32Array(3 * 10 * 4).fill(1),
});

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`errors and resources on ${adapter.description}`, () => {
    const ctx = adapter.ctx!;

    it('rejects wrong array sizes, naming the argument and the expected size', async () => {
      await expect(
        ovqAttention(ctx, { ...input(), q: new Float32Array(239) }, config),
      ).rejects.toThrow(/q: has 239 values; expected batchHeads\*seqLen\*keyDim = 3\*10\*8 = 240/);
      await expect(ovqAttention(ctx, { ...input(), seqLen: 0 }, config)).rejects.toThrow(
        /seqLen: got 0; expected a positive integer/,
      );
      await expect(attentionForward(ctx, input(), -1)).rejects.toThrow(
        /scale: got -1; expected a finite number > 0/,
      );
    });

    it('rejects wrong tensor shapes at the GPU level', () => {
      const state = createGpuOvqState(ctx, dims, config);
      const q = ctx.tensor([3, 10, 8]);
      const k = ctx.tensor([3, 10, 8]);
      const v = ctx.tensor([3, 10, 4]);
      const out = ctx.tensor([3, 9, 4]);
      expect(() => ovqForwardGpu(state, { q, k, v, seqLen: 10 }, out)).toThrow(
        /out: has shape \[3, 9, 4\] \(108 values\); expected/,
      );
      v.dispose();
      expect(() => ovqForwardGpu(state, { q, k, v, seqLen: 10 }, out)).toThrow(/v: was disposed/);
      for (const t of [q, k, out]) t.dispose();
      state.dispose();
      expect(() => ovqForwardGpu(state, { q, k, v, seqLen: 10 }, out)).toThrow(
        /state: was disposed/,
      );
    });

    it('rejects a chunk size that does not fit workgroup storage', async () => {
      await expect(ovqAttention(ctx, input(), { ...config, chunkSize: 4096 })).rejects.toThrow(
        /config.chunkSize: is 4096; the spawn kernel needs/,
      );
    });

    it('compiles each pipeline once and destroys every buffer it creates', async () => {
      await ovqAttention(ctx, input(), config);
      const pipelines = ctx.pipelineCount;
      const live = ctx.liveTensors;
      await ovqAttention(ctx, input(), config);
      await ctx.finish();
      await new Promise((r) => setTimeout(r, 10));
      expect(ctx.pipelineCount).toBe(pipelines);
      expect(ctx.liveTensors).toBe(live);
      // The spawn kernel's argmax uses subgroups exactly when the device has them.
      const spawn = ctx.pipelineKeys.filter((key) => key.startsWith('ovq-spawn-assign'));
      expect(spawn.length).toBeGreaterThan(0);
      expect(spawn.every((key) => key.endsWith('-sg') === ctx.caps.subgroups)).toBe(true);
    });

    it('reports a lost device clearly', async () => {
      const acquired = await acquireDevice(routeOptions(adapter.name));
      const lost = new GpuContext(acquired.device);
      acquired.device.destroy();
      await expect(ovqAttention(lost, input(), config)).rejects.toThrow(
        /device: was lost \(reason destroyed/,
      );
    });

    it('reports limits too small (a device requested without raised limits)', async () => {
      const gpu = await getGpu(routeOptions(adapter.name));
      const featureLevel = routeOptions(adapter.name).featureLevel ?? 'core';
      const bare = await (await gpu.requestAdapter({ featureLevel }))!.requestDevice();
      if (bare.limits.maxStorageBuffersPerShaderStage >= 8) {
        // Core defaults suffice; a limit the kernels need then comes from the config instead.
        expect(() => new GpuContext(bare)).not.toThrow();
      } else {
        expect(() => new GpuContext(bare)).toThrow(
          /device.limits.maxStorageBuffersPerShaderStage is 4; @ovq\/webgpu needs ≥ 8/,
        );
      }
      bare.destroy();
      expect(() => new GpuContext(null as unknown as GPUDevice)).toThrow(
        /device: got null; expected a GPUDevice/,
      );
    });
  });
}
