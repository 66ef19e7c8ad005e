/** Sentinel target for positions that are not scored. */
export const IGNORE = -1;

/** A batch of token sequences: inputs and next-token targets, row-major [batch, seqLen]. */
export type TokenBatch = {
  kind: 'tokens';
  batch: number;
  seqLen: number;
  vocabSize: number;
  inputs: Int32Array;
  /** Target token per position, or IGNORE where the position is not scored. */
  targets: Int32Array;
};

/** A batch of real-valued sequences (in-context regression): [batch, seqLen, dim] row-major. */
export type VectorBatch = {
  kind: 'vectors';
  batch: number;
  seqLen: number;
  inputDim: number;
  targetDim: number;
  inputs: Float32Array;
  targets: Float32Array;
  /** 1 where the position's target is scored. */
  mask: Uint8Array;
};

export type Batch = TokenBatch | VectorBatch;

/** A seeded generator of training/evaluation batches with its own metric. */
export interface Task<B extends Batch = Batch> {
  readonly name: string;
  /** One-line statement of what the task asks, for logs and reports. */
  readonly description: string;
  /** Whether higher metric values are better (accuracy) or lower (MSE). */
  readonly metric: 'accuracy' | 'mse';
  /** The batch for `(seed, index)`: the same arguments always give the same batch. */
  sample(batch: number, seqLen: number, seed: number): B;
}
