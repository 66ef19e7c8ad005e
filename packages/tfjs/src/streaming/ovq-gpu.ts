// OvqAttention streaming on the webgpu backend: a state that stepAsync starts there keeps its
// dictionaries in one @ovq/webgpu GpuOvqState (B·H heads, fed by the projections' own GPU
// buffers), so a step reads nothing back. While such a GPU stream exists the host OvqStates in
// `perHead` are stale; `streamToHost` reads the dictionaries back into host states.
import { createOvqState, type OvqConfig, type OvqState } from '@ovq/core';
import { type GpuOvqState, readOvqState } from '@ovq/webgpu';

export type GpuStream = {
  gpu: GpuOvqState;
  /**
   * dataId of the log β variable when the stream started (an assignment replaces it): the
   * 'gaussian' read's keys are √β-scaled, so that stream needs the same β to its end.
   */
  betaId: object;
};

const streams = new WeakMap<object, GpuStream>();

// A state dropped without disposeState still frees its GPU buffers once it is collected (only
// GPU buffers: no tfjs tensor is touched from a finalizer).
const registry = new FinalizationRegistry<GpuOvqState>((gpu) => gpu.dispose());

export function gpuStreamOf(state: object): GpuStream | undefined {
  return streams.get(state);
}

export function startGpuStream(state: object, stream: GpuStream): GpuStream {
  streams.set(state, stream);
  registry.register(state, stream.gpu, state);
  return stream;
}

/** Frees the GPU stream of `state` (if any); its host states stay as they were. */
export function endGpuStream(state: object): void {
  const stream = streams.get(state);
  if (!stream) return;
  streams.delete(state);
  registry.unregister(state);
  stream.gpu.dispose();
}

/**
 * Reads the GPU stream back as one host OvqState per [batch, head] (index b·heads + h) with the
 * layer's config: the kernel's β = 1 states become β = β_h states (`beta` [heads], the β the
 * stream ran with), and for the 'gaussian' read the √β_h-scaled keys (centroids and pending) are
 * scaled back.
 */
export async function streamToHost(
  stream: GpuStream,
  beta: ArrayLike<number>,
  dims: { heads: number; keyDim: number; valueDim: number },
  config: Omit<OvqConfig, 'beta'>,
): Promise<OvqState[]> {
  const heads = await readOvqState(stream.gpu);
  const { keyDim: dk, valueDim: dv } = dims;
  return heads.map((g, i) => {
    const b = beta[i % dims.heads];
    const s = config.read === 'gaussian' ? 1 / Math.sqrt(b) : 1;
    const unscale = (x: Float64Array) => (s === 1 ? x : x.map((e) => e * s));
    return createOvqState(
      { keyDim: dk, valueDim: dv },
      { ...config, capacity: g.config.capacity, beta: b },
      {
        counts: g.counts,
        centroidKeys: unscale(g.centroidKeys),
        centroidValues: g.centroidValues,
        pendingKeys: unscale(g.pendingKeys.subarray(0, g.pendingCount * dk)),
        pendingValues: g.pendingValues.subarray(0, g.pendingCount * dv),
        tokensSeen: g.tokensSeen,
        rngState: g.rngState,
      },
    );
  });
}
