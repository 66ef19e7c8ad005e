// Bad input gives a clear error (naming the argument, the value and what was expected): wrong
// buffer sizes, a lost device, limits too small, disposed buffers. Also: pipelines are compiled
// once, and every buffer an entry point creates is destroyed.
import { describe, expect, it } from 'vitest';
import { acquireDevice, getGpu } from '../src/device/acquire.js';
import { GpuContext } from '../src/gpu/context.js';
import { CopyRowsProgram } from '../src/kernels/rows/rows.js';
import { attentionForward } from '../src/ops/attention.js';
import { ovqAttention, ovqAttentionBackward } from '../src/ovq/api.js';
import { ovqBackwardGpu } from '../src/ovq/backward.js';
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

    it('refuses novelty spawn (spawnDistance), which only @ovq/core implements', async () => {
      await expect(ovqAttention(ctx, input(), { ...config, spawnDistance: 1 })).rejects.toThrow(
        /config\.spawnDistance: got 1; novelty spawn runs on @ovq\/core \(CPU\) only/,
      );
      expect(() => createGpuOvqState(ctx, dims, { ...config, spawnDistance: 0.5 })).toThrow(
        /config\.spawnDistance/,
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
      // The spawn kernel's argmax uses subgroups exactly when the device has them (and they are on).
      const spawn = ctx.pipelineKeys.filter((key) => key.startsWith('ovq-spawn-assign'));
      expect(spawn.length).toBeGreaterThan(0);
      expect(spawn.every((key) => key.endsWith('-sg') === ctx.variant.subgroups)).toBe(true);
    });

    const settle = async () => {
      await ctx.device.queue.onSubmittedWorkDone();
      for (let i = 0; i < 200 && ctx.pendingErrorScopes > 0; i++)
        await new Promise((r) => setTimeout(r, 5));
      expect(ctx.pendingErrorScopes).toBe(0);
    };
    const badBuffer = () =>
      ctx.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });

    it('a GPU validation error is thrown by checkErrors, naming the work, then cleared', async () => {
      ctx.trackErrors(badBuffer, 'the test submit');
      await expect(ctx.checkErrors()).rejects.toThrow(
        /gpu: WebGPU reported an error: the test submit: /,
      );
      await expect(ctx.checkErrors()).resolves.toBeUndefined();
    });

    it('a GPU error is thrown by the next GPU-level call (ovqForwardGpu, ovqBackwardGpu)', async () => {
      const state = createGpuOvqState(ctx, dims, config);
      const q = ctx.tensor([3, 10, 8]);
      const k = ctx.tensor([3, 10, 8]);
      const v = ctx.tensor([3, 10, 4]);
      const out = ctx.tensor([3, 10, 4]);
      try {
        ctx.trackErrors(badBuffer, 'an earlier submit');
        await settle();
        expect(() => ovqForwardGpu(state, { q, k, v, seqLen: 10 }, out)).toThrow(
          /gpu: WebGPU reported an error: an earlier submit: /,
        );
        const grads = {
          dq: ctx.tensor([3, 10, 8]),
          dk: ctx.tensor([3, 10, 8]),
          dv: ctx.tensor([3, 10, 4]),
          dbeta: ctx.tensor([3]),
        };
        ctx.trackErrors(badBuffer, 'another submit');
        await settle();
        expect(() => ovqBackwardGpu(state, { q, k, v, seqLen: 10 }, out, out, grads)).toThrow(
          /gpu: WebGPU reported an error: another submit/,
        );
        for (const t of Object.values(grads)) t.dispose();
        // Reported once: the context is usable again.
        expect(() =>
          ovqForwardGpu(state, { q, k, v, seqLen: 10 }, out).scope.dispose(),
        ).not.toThrow();
        await ctx.checkErrors();
      } finally {
        for (const t of [q, k, v, out]) t.dispose();
        state.dispose();
      }
    });

    it('an allocation beyond the buffer limits throws before any dispatch, naming buffer and limit', async () => {
      const live = ctx.liveTensors;
      const limit = Math.min(ctx.caps.maxBufferSize, ctx.caps.maxStorageBindingSize);
      expect(() => ctx.tensor([limit / 4 + 4], 'f32', 'huge')).toThrow(
        /huge: needs \d+ bytes \(shape \[\d+\]\); device\.limits\.max(BufferSize|StorageBufferBindingSize) is \d+/,
      );
      // The state's constructor leaves nothing allocated when its dictionary does not fit.
      const capacity = Math.ceil(limit / (4 * dims.keyDim * dims.batchHeads)) + 1;
      expect(() => createGpuOvqState(ctx, dims, { ...config, capacity })).toThrow(
        /centroidKeys: needs \d+ bytes .*device\.limits\.max/,
      );
      expect(ctx.liveTensors).toBe(live);
      await ctx.checkErrors();
    });

    it('a key row too wide for workgroup memory throws naming the limit, and leaks nothing', async () => {
      const wide = { batchHeads: 1, keyDim: 16384, valueDim: 4 };
      const state = createGpuOvqState(ctx, wide, { chunkSize: 4, capacity: 4, beta: 1 });
      const q = ctx.tensor([1, 8, 16384]);
      const k = ctx.tensor([1, 8, 16384]);
      const v = ctx.tensor([1, 8, 4]);
      const out = ctx.tensor([1, 8, 4]);
      const live = ctx.liveTensors;
      expect(() => ovqForwardGpu(state, { q, k, v, seqLen: 8 }, out)).toThrow(
        /keyDim\/valueDim: one staged row needs \d+ bytes of workgroup storage but device\.limits\.maxComputeWorkgroupStorageSize is \d+/,
      );
      await ctx.finish();
      await new Promise((r) => setTimeout(r, 10));
      expect(ctx.liveTensors).toBe(live);
      for (const t of [q, k, v, out]) t.dispose();
      state.dispose();
      await ctx.checkErrors();
    });

    it('a dispatch beyond maxComputeWorkgroupsPerDimension throws naming the limit', () => {
      const a = ctx.tensor([4]);
      const rec = ctx.recorder();
      const max = ctx.caps.maxWorkgroupsPerDimension;
      const params = { rows: 1, srcRowsPerHead: 1, srcOffset: 0, dstRowsPerHead: 1, dstOffset: 0 };
      expect(() =>
        rec.dispatch(new CopyRowsProgram(4, false, 64), [a, a], params, [max + 1, 1]),
      ).toThrow(new RegExp(`exceeds maxComputeWorkgroupsPerDimension ${max}`));
      a.dispose();
    });

    it('rejects tensors of another device and destroyed tensors at every GPU-level entry', async () => {
      const other = new GpuContext((await acquireDevice(routeOptions(adapter.name))).device);
      const state = createGpuOvqState(ctx, dims, config);
      const mine = () => ({
        q: ctx.tensor([3, 10, 8]),
        k: ctx.tensor([3, 10, 8]),
        v: ctx.tensor([3, 10, 4]),
      });
      const t = mine();
      const foreign = other.tensor([3, 10, 4]);
      const out = ctx.tensor([3, 10, 4]);
      try {
        expect(() => ovqForwardGpu(state, { ...t, v: foreign, seqLen: 10 }, out)).toThrow(
          /v: was created on another GPUDevice/,
        );
        expect(() => ovqForwardGpu(state, { ...t, seqLen: 10 }, foreign)).toThrow(
          /out: was created on another GPUDevice/,
        );
        const grads = {
          dq: ctx.tensor([3, 10, 8]),
          dk: ctx.tensor([3, 10, 8]),
          dv: ctx.tensor([3, 10, 4]),
          dbeta: ctx.tensor([3]),
        };
        expect(() => ovqBackwardGpu(state, { ...t, seqLen: 10 }, foreign, out, grads)).toThrow(
          /dout: was created on another GPUDevice/,
        );
        grads.dbeta.dispose();
        expect(() => ovqBackwardGpu(state, { ...t, seqLen: 10 }, out, out, grads)).toThrow(
          /dbeta: was disposed/,
        );
        for (const g of Object.values(grads)) g.dispose();
      } finally {
        for (const x of [...Object.values(t), out]) x.dispose();
        state.dispose();
        other.device.destroy();
      }
    });

    it('rejects non-finite inputs when asked (checkFinite), naming the array and index', async () => {
      const bad = input();
      bad.k[5] = Number.NaN;
      await expect(ovqAttention(ctx, bad, config, { checkFinite: true })).rejects.toThrow(
        /k: has NaN at index 5; expected finite values/,
      );
      const g = new Float32Array(3 * 10 * 4).fill(Number.POSITIVE_INFINITY);
      await expect(
        ovqAttentionBackward(ctx, input(), config, g, { checkFinite: true }),
      ).rejects.toThrow(/dOutput: has Infinity at index 0/);
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
