// The two places OVQ can run: @ovq/webgpu on a GPUDevice (navigator.gpu) and @ovq/core's
// streaming Float32 path. Both take the sequence in pieces and expose the dictionary as an
// @ovq/core OvqState, so the drawing, the memory numbers and the recall probes are shared.
// The GPU half lives in gpu-backend.ts and reaches run.ts through GpuProbe.create, so the CPU
// worker's bundle carries no @ovq/webgpu.
import { createOvqStream, type OvqConfig, type OvqState, type OvqStream } from '@ovq/core';

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

export type Dims = { keyDim: number; valueDim: number };

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

export type GpuProbe =
  | {
      ctx: object;
      adapter: string;
      software: boolean;
      create(dims: Dims, config: OvqConfig): OvqBackend;
    }
  | { ctx: null; reason: string };

export function createBackend(
  path: PathName,
  gpu: GpuProbe,
  dims: Dims,
  config: OvqConfig,
): OvqBackend {
  if (path === 'webgpu') {
    if (!gpu.ctx) throw new Error(`backend: WebGPU was asked for but ${gpu.reason}`);
    return gpu.create(dims, config);
  }
  return new CpuBackend(dims, config);
}
