/** One head of one sequence in @ovq/core's layout, plus what the page shows about its tokens. */
export type PlaygroundInput = {
  kind: 'text' | 'sample' | 'recall';
  /** Short description shown next to the run. */
  label: string;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  seqLen: number;
  keyDim: number;
  valueDim: number;
  /** The bytes of a text input (one token per byte); absent for the recall sequence. */
  bytes?: Uint8Array;
  /** The recall sequence's facts: positions, keys and values. */
  facts?: RecallFacts;
};

export type RecallFacts = {
  count: number;
  /** Stream position of each fact. */
  positions: Int32Array;
  /** Fact keys [count, keyDim] (unit vectors), the probe queries. */
  keys: Float32Array;
  /** Fact values [count, valueDim]. */
  values: Float32Array;
};
