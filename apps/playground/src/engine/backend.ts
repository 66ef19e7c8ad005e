// The two places OVQ can run: @ovq/webgpu on a GPUDevice (navigator.gpu) and @ovq/core's
// streaming Float32 path. Both take the sequence in pieces and expose the dictionary as an
// @ovq/core OvqState, so the drawing, the memory numbers and the recall probes are shared.
import { createOvqStream, type OvqConfig, type OvqState, type OvqStream } from '@ovq/core';
import {
  acquireDevice,
  createGpuOvqState,
  GpuContext,
  type GpuOvqState,
  ovqAppend,
  readOvqState,
} from '@ovq/webgpu';

export type PathName = 'webgpu' | 'cpu';

export type Piece = { q: Float32Array; k: Float32Array; v: Float32Array; seqLen: number };

export interface OvqBackend {
  readonly path: PathName;
  /** Streams one piece; returns its outputs [seqLen, valueDim]. */
  append(piece: Piece): Promise<Float32Array>;
  /** The dictionary now (a snapshot). */
  state(): Promise<OvqState>;
  dispose(): void;
}

type Dims = { keyDim: number; valueDim: number };

class CpuBackend implements OvqBackend {
  readonly path = 'cpu' as const;
  private readonly stream: OvqStream;
  constructor(dims: Dims, config: OvqConfig) {
    this.stream = createOvqStream(dims, config);
  }
  async append(piece: Piece): Promise<Float32Array> {
    return this.stream.append(piece);
  }
  async state(): Promise<OvqState> {
    return this.stream.state;
  }
  dispose(): void {
    this.stream.dispose();
  }
}

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

export type GpuProbe =
  | { ctx: GpuContext; adapter: string; software: boolean }
  | { ctx: null; reason: string };

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
      return {
        ctx: new GpuContext(device),
        adapter: `${name}${isFallbackAdapter ? ' (software fallback)' : ''}`,
        software: isFallbackAdapter,
      };
    } catch (error) {
      return { ctx: null, reason: `no WebGPU adapter (${(error as Error).message})` };
    }
  })();
  return gpuPromise;
}

export function createBackend(
  path: PathName,
  gpu: GpuProbe,
  dims: Dims,
  config: OvqConfig,
): OvqBackend {
  if (path === 'webgpu') {
    if (!gpu.ctx) throw new Error(`backend: WebGPU was asked for but ${gpu.reason}`);
    return new GpuBackend(gpu.ctx, dims, config);
  }
  return new CpuBackend(dims, config);
}
