// What the runner knows about one implementation of one mixer. Entries are plain data plus
// closures so a test can inject a deliberately wrong one and watch the runner exclude it.

export type Dims = { keyDim: number; valueDim: number };

/** The sequence mixers the project compares (ALGORITHM.md §6 names their state sizes). */
export type Mixer = 'ovq' | 'softmax' | 'linear' | 'decay-linear' | 'gated-deltanet' | 'vq' | 'kvm';

export type Mode = 'forward' | 'forward+backward';

/** Outcome of comparing an implementation with the float64 reference on a small case. */
export type CheckResult = {
  ok: boolean;
  /** ‖ref − x‖/‖ref‖ on the outputs (and the worst gradient, when there is a backward). */
  forwardRms: number | null;
  backwardRms: number | null;
  tolerance: number;
  /** What was compared with what, or why the check failed. */
  detail: string;
};

/** Inputs allocated once for one sequence length; `forward`/`backward` are what gets timed. */
export type Workload = {
  forward(): unknown | Promise<unknown>;
  /** One training step's mixer cost: forward, then the gradients for a fixed dOutput. */
  forwardBackward?: () => unknown | Promise<unknown>;
  dispose?: () => void;
};

export type Implementation = {
  /** Unique id, `<mixer>/<implementation>`, e.g. `ovq/core-chunked`. */
  name: string;
  mixer: Mixer;
  /** Which code path: core-reference, core-chunked, baselines-fast, webgpu-vulkan, tfjs-cpu… */
  implementation: string;
  /** Human-readable config summary (capacity, chunk, β, window…). */
  config: string;
  hasBackward: boolean;
  check(): Promise<CheckResult>;
  setup(T: number, dims: Dims): Promise<Workload>;
  /** FLOPs of one call under the model documented in registry/flops.ts. */
  flops(T: number, dims: Dims, mode: Mode): number;
  /** Numbers kept between tokens after T tokens (ALGORITHM.md §6). */
  stateSize(T: number, dims: Dims): number;
  /**
   * Streams T tokens through the implementation's streaming API in pieces, calling `afterPiece`
   * after each: the memory probe runs this in a child process (see measure/memory.ts).
   */
  stream?: (
    T: number,
    dims: Dims,
    piece: number,
    afterPiece: () => void | Promise<void>,
  ) => Promise<void>;
};

/** An implementation the runner knows of but cannot run here, and why. */
export type Skipped = { name: string; mixer: Mixer; implementation: string; reason: string };

export type Registry = { implementations: Implementation[]; skipped: Skipped[] };
