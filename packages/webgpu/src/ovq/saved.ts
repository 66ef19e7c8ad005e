// What a saved forward (`ovqForwardGpu`'s `save`) was run with, so that
// `ovqBackwardFromSavedGpu` can refuse saved tensors paired with other inputs or another config:
// the decisions index dictionary rows by the forward's capacity and chunking, and a mismatch
// would give wrong gradients without any error. Keyed by the GPU buffers themselves, so a
// framework that wraps the same buffers in new tensor objects (the tfjs bridge) is still matched.
import { WebGpuError } from '../gpu/errors.js';
import type { GpuTensor } from '../gpu/tensor.js';
import type { GpuOvqState } from './state.js';

type SavedInput = { q: GpuTensor; k: GpuTensor; v: GpuTensor; seqLen: number };
type Buffers = { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer; output: GPUBuffer; lse: GPUBuffer };

type Stamp = {
  /** Dims, sequence length and the state's whole config, as JSON. */
  setting: string;
  inputs: Buffers;
};

const STAMPS = new WeakMap<GPUBuffer, Stamp>();

function setting(state: GpuOvqState, seqLen: number): string {
  const { batchHeads, keyDim, valueDim, config } = state;
  return JSON.stringify({ batchHeads, keyDim, valueDim, seqLen, config });
}

/** The buffers a saved forward and its backward must share. */
function buffersOf(input: SavedInput, output: GpuTensor, lse: GpuTensor): Buffers {
  return {
    q: input.q.buffer,
    k: input.k.buffer,
    v: input.v.buffer,
    output: output.buffer,
    lse: lse.buffer,
  };
}

/** Records what the forward that wrote `save.trace` ran with (called after it is encoded). */
export function stampSavedForward(
  state: GpuOvqState,
  input: SavedInput,
  output: GpuTensor,
  save: { lse: GpuTensor; trace: GpuTensor },
): void {
  STAMPS.set(save.trace.buffer, {
    setting: setting(state, input.seqLen),
    inputs: buffersOf(input, output, save.lse),
  });
}

/**
 * Throws a WebGpuError naming `saved` when the saved decisions were written by a forward of other
 * dims, length or config, or with other q, k, v, output or log-sum-exp buffers, or by no saved
 * forward at all.
 */
export function checkSavedForward(
  state: GpuOvqState,
  input: SavedInput,
  saved: { output: GpuTensor; lse: GpuTensor; trace: GpuTensor },
): void {
  const stamp = STAMPS.get(saved.trace.buffer);
  if (!stamp) {
    throw new WebGpuError(
      'saved.trace',
      'was not written by ovqForwardGpu with options.save (or was written on another copy of @ovq/webgpu); expected the decisions of the forward whose gradients are wanted',
    );
  }
  const now = setting(state, input.seqLen);
  if (stamp.setting !== now) {
    throw new WebGpuError(
      'saved',
      `was saved by a forward with ${stamp.setting}; this backward has ${now} (same dims, length and config expected)`,
    );
  }
  const given = buffersOf(input, saved.output, saved.lse);
  for (const name of ['q', 'k', 'v', 'output', 'lse'] as const) {
    if (stamp.inputs[name] !== given[name]) {
      const arg = name === 'output' || name === 'lse' ? `saved.${name}` : name;
      throw new WebGpuError(
        arg,
        `is not the buffer the saved forward used for ${name}; expected the same q, k, v and the forward's own output and log-sum-exps`,
      );
    }
  }
}
