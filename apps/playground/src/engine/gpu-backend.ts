// @ovq/webgpu behind the OvqBackend interface, and the page's one GPU device. Loaded only with
// the WebGPU path (page-run.ts).
import type { OvqConfig, OvqState } from '@ovq/core';
import {
  acquireDevice,
  createGpuOvqState,
  GpuContext,
  type GpuOvqState,
  ovqAppend,
  readOvqState,
} from '@ovq/webgpu';
import type { Dims, GpuProbe, OvqBackend, Piece } from './backend.js';

class GpuBackend implements OvqBackend {
  readonly path = 'webgpu' as const;
  private readonly gpuState: GpuOvqState;
  constructor(ctx: GpuContext, dims: Dims, config: OvqConfig) {
    this.gpuState = createGpuOvqState(ctx, { batchHeads: 1, ...dims }, config);
  }
  async append(piece: Piece): Promise<Float32Array> {
    return (await ovqAppend(this.gpuState, piece)).output;
  }
  async state(): Promise<OvqState> {
    return (await readOvqState(this.gpuState))[0];
  }
  dispose(): void {
    this.gpuState.dispose();
  }
}

let gpuPromise: Promise<GpuProbe> | null = null;

/** One GPU context for the page's life: navigator.gpu → adapter → device, or why not. */
export function probeGpu(): Promise<GpuProbe> {
  gpuPromise ??= (async (): Promise<GpuProbe> => {
    const nav = (globalThis as { navigator?: { gpu?: unknown } }).navigator;
    if (!nav?.gpu) return { ctx: null, reason: 'this browser has no navigator.gpu' };
    try {
      const { device, adapterInfo, isFallbackAdapter } = await acquireDevice();
      const name =
        adapterInfo.description || adapterInfo.architecture || adapterInfo.vendor || 'unnamed';
      const ctx = new GpuContext(device);
      return {
        ctx,
        create: (dims: Dims, config: OvqConfig) => new GpuBackend(ctx, dims, config),
        adapter: `${name}${isFallbackAdapter ? ' (software fallback)' : ''}`,
        software: isFallbackAdapter,
      };
    } catch (error) {
      return { ctx: null, reason: `no WebGPU adapter (${(error as Error).message})` };
    }
  })();
  return gpuPromise;
}
