// What ovq-bench needs from @ovq/train, and the adapter that builds it from the package's
// `train` loop and `createTfjsMixer` factory. TensorFlow.js is @ovq/train's peer: it is resolved
// from that package's installation (the instance its models use). The package's own types are
// used (a renamed export is a compile error); only a failed load becomes a "skipped" with the reason.
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';

export type RecallTask = 'mqar' | 'positional';

export type TrainRecallOptions = {
  task: RecallTask;
  /** Bench mixer name: 'ovq', 'softmax', 'linear', 'decay-linear', 'gated-deltanet', 'vq', 'kvm'. */
  mixer: string;
  /** Mixer-specific size knob (OVQ capacity N, VQ codes, KVM rows); undefined = default. */
  capacity?: number;
  learningRate: number;
  steps: number;
  seqLen: number;
  seed: number;
};

export type TrainRecallResult = { accuracy: number; stateNumbers: number };

export type LossByPositionOptions = {
  mixer: string;
  /** Training length; loss is measured on held-out documents `evalMultiple`× longer. */
  seqLen: number;
  evalMultiple: number;
  steps: number;
  learningRate: number;
  seed: number;
};

export type LossByPositionResult = { positions: number[]; loss: number[] };

export type TrainApi = {
  trainRecall?: (o: TrainRecallOptions) => Promise<TrainRecallResult>;
  lossByPosition?: (o: LossByPositionOptions) => Promise<LossByPositionResult>;
  backend?: string;
};

/** Bench mixer names → @ovq/train's mixer kinds. */
const KIND: Record<string, string> = {
  ovq: 'ovq',
  softmax: 'softmax',
  linear: 'linear',
  'decay-linear': 'decay',
  'gated-deltanet': 'gdn',
  vq: 'vq',
  kvm: 'kvm',
};

/** The small hybrid the recall comparison trains: SWA (RoPE) alternating with the mixer (NoPE). */
export const RECALL_MODEL = { dModel: 64, heads: 2, layers: 2, window: 16 };

type Tensor = { dataSync(): Float32Array; dispose(): void; shape: number[] };
type Tf = {
  setBackend(n: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  tidy<T>(f: () => T): T;
  logSoftmax(x: Tensor): Tensor;
};
type TrainModule = typeof import('@ovq/train');
type TaskSpec = Parameters<TrainModule['createTasks']>[0];
type Decoder = Awaited<ReturnType<TrainModule['train']>>['model'];

async function loadTf(): Promise<{ tf: Tf; backend: string }> {
  const require = createRequire(import.meta.url);
  const fromTrain = createRequire(require.resolve('@ovq/train/package.json'));
  const load = (name: string) => import(pathToFileURL(fromTrain.resolve(name)).href);
  // The full package registers the gradients of the built-in ops that training needs.
  const mod = (await load('@tensorflow/tfjs')) as Tf & { default?: Tf };
  const tf = mod.default?.setBackend ? mod.default : mod;
  try {
    // SIMD wasm is ~30× the cpu backend's matmul speed here (single thread in Node).
    const wasm = (await load('@tensorflow/tfjs-backend-wasm')) as { setWasmPaths(p: string): void };
    wasm.setWasmPaths(`${dirname(fromTrain.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
    if (await tf.setBackend('wasm')) {
      await tf.ready();
      return { tf, backend: 'wasm' };
    }
  } catch {}
  await tf.setBackend('cpu');
  await tf.ready();
  return { tf, backend: 'cpu' };
}

function modelFor(kind: string, capacity: number | undefined) {
  return {
    dModel: RECALL_MODEL.dModel,
    heads: RECALL_MODEL.heads,
    layers: RECALL_MODEL.layers,
    mixers: `swa,${kind}`,
    mixerOptions: {
      window: RECALL_MODEL.window,
      ...(capacity === undefined
        ? {}
        : kind === 'ovq'
          ? { ovqCapacity: capacity }
          : kind === 'vq'
            ? { vqCodes: capacity }
            : kind === 'kvm'
              ? { kvmBudget: capacity }
              : {}),
    },
  };
}

/** Numbers one mixer layer keeps at T (all heads), from the model's own accounting. */
function mixerState(model: Decoder, kind: string, T: number): number {
  const sizes = model.stateSize(T);
  return Math.max(...sizes.filter((_, l) => (model.kinds[l] as string) === kind));
}

function adapter(t: TrainModule): TrainApi {
  let tfReady: Promise<{ tf: Tf; backend: string }> | null = null;
  const tf = () => (tfReady ??= loadTf());
  const base = (o: { seqLen: number; steps: number; learningRate: number; seed: number }) => ({
    ...t.DEFAULT_TRAIN_CONFIG,
    seqLen: o.seqLen,
    steps: o.steps,
    lr: o.learningRate,
    warmup: Math.max(1, Math.floor(o.steps / 10)),
    evalEvery: o.steps,
    seed: o.seed,
  });
  return {
    async trainRecall(o) {
      await tf();
      const kind = KIND[o.mixer];
      if (!kind)
        throw new Error(
          `mixer ${o.mixer} has no @ovq/train kind; expected one of ${Object.keys(KIND).join(', ')}`,
        );
      const task: TaskSpec =
        o.task === 'mqar'
          ? { name: 'mqar', vocabSize: 64, numPairs: 8 }
          : { name: 'positional-recall', vocabSize: 2 * o.seqLen };
      const result = await t.train(
        { ...base(o), task, model: modelFor(kind, o.capacity), evalLengths: [1] },
        { createMixer: t.createTfjsMixer },
      );
      const last = result.evals.filter((e) => e.seqLen === o.seqLen).at(-1);
      const out = {
        accuracy: last?.metric ?? Number.NaN,
        stateNumbers: mixerState(result.model, kind, o.seqLen),
      };
      result.model.dispose();
      return out;
    },
    async lossByPosition(o) {
      const { tf: tfx } = await tf();
      const kind = KIND[o.mixer];
      if (!kind) throw new Error(`mixer ${o.mixer} has no @ovq/train kind`);
      const spec: TaskSpec = { name: 'byte-lm' };
      const result = await t.train(
        { ...base(o), task: spec, model: modelFor(kind, undefined), evalLengths: [1] },
        { createMixer: t.createTfjsMixer },
      );
      const { evaluation } = await t.createTasks(spec);
      const T = o.seqLen * o.evalMultiple;
      const batch = evaluation.sample(4, T, 0x1e7a1);
      // Per-position cross-entropy of the held-out batch, averaged over the batch.
      const logp = tfx.tidy(() =>
        tfx.logSoftmax(result.model.forward(t.batchInputs(batch)) as unknown as Tensor).dataSync(),
      );
      result.model.dispose();
      const V = logp.length / (4 * T);
      const loss = new Float64Array(T);
      const count = new Float64Array(T);
      for (let b = 0; b < 4; b++) {
        for (let p = 0; p < T; p++) {
          const y = batch.targets[b * T + p];
          if (y < 0) continue;
          loss[p] -= logp[(b * T + p) * V + y];
          count[p]++;
        }
      }
      // Bucket positions geometrically so curves over long documents stay readable.
      const positions: number[] = [];
      const losses: number[] = [];
      for (let lo = 0, hi = 8; lo < T; lo = hi, hi = Math.min(T, hi * 2)) {
        let s = 0;
        let n = 0;
        for (let p = lo; p < hi; p++) {
          s += loss[p];
          n += count[p];
        }
        if (n > 0) {
          positions.push(hi);
          losses.push(s / n);
        }
      }
      return { positions, loss: losses };
    },
  };
}

/** Loads @ovq/train (typed as the package) and returns its adapter, or why it cannot be used. */
export async function loadTrainApi(): Promise<{ api: TrainApi; missing: string | null }> {
  let mod: TrainModule;
  try {
    mod = await import('@ovq/train');
  } catch (error) {
    return { api: {}, missing: `@ovq/train failed to load: ${String(error).slice(0, 160)}` };
  }
  return { api: adapter(mod), missing: null };
}
