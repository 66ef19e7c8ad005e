// The interface ovq-bench expects from @ovq/train. The package is written separately; the suites
// that need it look these functions up by name and report "skipped" with the reason until they
// exist, so the runner never depends on a half-landed API at build time.

export type RecallTask = 'mqar' | 'positional';

export type TrainRecallOptions = {
  task: RecallTask;
  /** 'ovq', 'softmax', 'linear', 'decay-linear', 'gated-deltanet', 'vq', 'kvm'. */
  mixer: string;
  /** Mixer-specific size knob (OVQ capacity N, VQ codebook size…); undefined = default. */
  capacity?: number;
  learningRate: number;
  steps: number;
  seqLen: number;
  seed: number;
};

export type TrainRecallResult = { accuracy: number; stateNumbers: number };

export type LossByPositionOptions = {
  mixer: string;
  seqLen: number;
  documents: number;
  seed: number;
};

export type LossByPositionResult = { positions: number[]; loss: number[] };

export type TrainApi = {
  trainRecall?: (o: TrainRecallOptions) => Promise<TrainRecallResult>;
  lossByPosition?: (o: LossByPositionOptions) => Promise<LossByPositionResult>;
};

/** Loads @ovq/train and returns the functions present, or why it cannot be used. */
export async function loadTrainApi(): Promise<{ api: TrainApi; missing: string | null }> {
  let mod: Record<string, unknown>;
  try {
    mod = (await import('@ovq/train')) as Record<string, unknown>;
  } catch (error) {
    return { api: {}, missing: `@ovq/train failed to load: ${String(error).slice(0, 160)}` };
  }
  const api: TrainApi = {};
  if (typeof mod.trainRecall === 'function')
    api.trainRecall = mod.trainRecall as TrainApi['trainRecall'];
  if (typeof mod.lossByPosition === 'function') {
    api.lossByPosition = mod.lossByPosition as TrainApi['lossByPosition'];
  }
  const exported = Object.keys(mod).length;
  return {
    api,
    missing: exported === 0 ? '@ovq/train exports nothing yet' : null,
  };
}
