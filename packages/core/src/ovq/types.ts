/** One head of one sequence: row-major [seqLen, keyDim] queries/keys and [seqLen, valueDim] values. */
export type Seq = {
  q: Float32Array | Float64Array;
  k: Float32Array | Float64Array;
  v: Float32Array | Float64Array;
  seqLen: number;
  keyDim: number;
  valueDim: number;
};

/** Dictionary growth schedule G(τ): how many centroids may exist after τ absorbed tokens. */
export type Growth =
  | 'saturating'
  | 'fixed'
  | 'full'
  /**
   * `rows` R (default N): the schedule saturates toward R instead of N, R·τ/(R+τ), leaving the
   * rows above it to novelty spawn (`spawnDistance`) — a reserve for late novel keys. An
   * extension of ours; R ≥ N is the paper's schedule.
   */
  | { kind: 'saturating'; rows?: number }
  | { kind: 'fixed' }
  | { kind: 'full' }
  | { kind: 'log'; alpha: number }
  | { kind: 'sqrt'; scale: number }
  | { kind: 'linear'; rate: number };

export type OvqConfig = {
  /** Tokens per absorb (C). Reads see the dictionary as of the chunk start plus the pending tokens. */
  chunkSize: number;
  /** Maximum number of dictionary rows (N). May change between streaming calls. */
  capacity: number;
  /** Inverse temperature β > 0. */
  beta: number;
  /** Growth schedule; default 'saturating' (N·τ/(N+τ)). */
  growth?: Growth;
  /** How new centroids are chosen from a full chunk; default 'farthest'. */
  spawn?: 'farthest' | 'first' | 'random';
  /**
   * Novelty spawn (an extension, not in the paper): at each absorb, after the growth schedule's
   * spawns, any pending token whose squared distance to its nearest row still exceeds this seeds
   * a row of its own (farthest first), while fewer than `capacity` rows exist. Keys are compared
   * after normalisation, so 0 < spawnDistance ≤ 4 is the useful range. Default: off.
   */
  spawnDistance?: number;
  /** Read logit; default 'dot' (β q·μ + ln c); 'gaussian' subtracts β‖μ‖²/2 (exact GMR). */
  read?: 'dot' | 'gaussian';
  /** Centroid update; default 'mean' (step 1/count); 'ema' uses a constant rate (ablation). */
  update?: 'mean' | { kind: 'mean' } | { kind: 'ema'; rate: number };
  /** L2-normalise queries and keys; default true. */
  normalize?: boolean;
  /** Seed for `spawn: 'random'`; default 0. */
  seed?: number;
};

/** Growth with defaults filled in and string shorthands expanded. */
export type ResolvedGrowth =
  | { kind: 'saturating'; rows?: number }
  | { kind: 'fixed' }
  | { kind: 'full' }
  | { kind: 'log'; alpha: number }
  | { kind: 'sqrt'; scale: number }
  | { kind: 'linear'; rate: number };

/** A validated config with every option explicit. */
export type ResolvedOvqConfig = {
  chunkSize: number;
  capacity: number;
  beta: number;
  growth: ResolvedGrowth;
  spawn: 'farthest' | 'first' | 'random';
  /** Absent when novelty spawn is off (so saved states stay plain JSON). */
  spawnDistance?: number;
  read: 'dot' | 'gaussian';
  update: { kind: 'mean' } | { kind: 'ema'; rate: number };
  normalize: boolean;
  seed: number;
};

/**
 * The discrete decisions of one absorb: which pending tokens seeded new rows (in pick order) and
 * the row each pending token joined (a seed joins its own row). Recorded by every implementation
 * so that a reference can replay another implementation's choices (float32 rounding can flip a
 * near-tie) and so that backward passes can treat them as constants.
 */
export type AbsorbRecord = {
  /** Dictionary size before this absorb. */
  sizeBefore: number;
  /** Indices into the absorbed chunk of the tokens that seeded rows sizeBefore, sizeBefore+1, … */
  spawned: number[];
  /** Row joined by each token of the chunk (length = chunk size). */
  assignment: number[];
};

/** The discrete decisions of a whole call, one record per absorb, in order. */
export type OvqTrace = AbsorbRecord[];
