// The page entry of ../browser.test.ts, bundled for headless Chromium: @ovq/tfjs on
// @tensorflow/tfjs's webgpu (navigator.gpu) and cpu backends. Inputs arrive as plain arrays and
// results go back as plain arrays; the float64 references and the comparisons stay in Node.
import '@tensorflow/tfjs-backend-webgpu';
import { OvqAttention, ovqAttention, SoftmaxAttention, softmaxAttention } from '@ovq/tfjs';
import * as tf from '@tensorflow/tfjs';
import {
  CLASSES,
  type MixerRequest,
  type MixerResult,
  type ModelRequest,
  type ModelResult,
  VOCAB,
} from './protocol.js';

/** Switches the backend; resolves to null when ready, else why not. */
async function useBackend(name: string): Promise<string | null> {
  try {
    if (!(await tf.setBackend(name))) return `tf.setBackend('${name}') returned false`;
    await tf.ready();
    return tf.getBackend() === name ? null : `backend is ${tf.getBackend()}, not ${name}`;
  } catch (error) {
    return String(error);
  }
}

/** The GPU adapter Chromium offers, in words, or null when navigator.gpu has none. */
async function adapterInfo(): Promise<string | null> {
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) return null;
  const { vendor, architecture, description } = adapter.info;
  return `${vendor} ${architecture} ${description}`.trim() || 'unnamed adapter';
}

async function runMixer(request: MixerRequest): Promise<MixerResult> {
  const [B, H, T, dk, dv] = request.dims;
  const start = tf.memory().numTensors;
  const inputs: tf.Tensor[] = [
    tf.tensor4d(request.q, [B, H, T, dk]),
    tf.tensor4d(request.k, [B, H, T, dk]),
    tf.tensor4d(request.v, [B, H, T, dv]),
  ];
  if (request.op === 'ovqAttention') inputs.push(tf.tensor1d(request.beta));
  const dOut = tf.tensor4d(request.dOut, [B, H, T, dv]);
  const op = (xs: tf.Tensor[]): tf.Tensor =>
    request.op === 'ovqAttention'
      ? ovqAttention(xs[0], xs[1], xs[2], xs[3], request.config)
      : softmaxAttention(xs[0], xs[1], xs[2], request.config);
  const [y, grads] = tf.tidy(() => {
    const out = op(inputs);
    const g = tf.grads((...xs: tf.Tensor[]) => tf.sum(tf.mul(op(xs), dOut)))(inputs);
    return [out, g] as const;
  });
  const output = Array.from(await y.data());
  const gradArrays = await Promise.all(grads.map(async (g) => Array.from(await g.data())));
  tf.dispose([y, ...grads, ...inputs, dOut]);
  return {
    backend: tf.getBackend(),
    output,
    grads: gradArrays,
    leaked: tf.memory().numTensors - start,
  };
}

/** The README example's shape, smaller: embedding → SWA residual → OVQ residual → dense. */
function buildModel(): tf.LayersModel {
  const dim = 16;
  const input = tf.input({ shape: [null], dtype: 'int32' });
  const x = tf.layers
    .embedding({
      inputDim: VOCAB,
      outputDim: dim,
      embeddingsInitializer: tf.initializers.randomNormal({ seed: 1 }),
    })
    .apply(input) as tf.SymbolicTensor;
  const swa = new SoftmaxAttention({ heads: 2, keyDim: 8, window: 2, ropeBase: 10000, seed: 2 });
  const h1 = tf.layers.add().apply([x, swa.apply(x) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const ovq = new OvqAttention({ heads: 2, keyDim: 8, chunkSize: 4, capacity: 8, seed: 3 });
  const h2 = tf.layers.add().apply([h1, ovq.apply(h1) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const logits = tf.layers
    .dense({ units: CLASSES, kernelInitializer: tf.initializers.glorotNormal({ seed: 4 }) })
    .apply(h2) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits });
}

const OVQ_LAYERS = new Set(['SoftmaxAttention', 'OvqAttention']);

/**
 * Every layer's class and, for @ovq/tfjs's layers, the whole config. tfjs' own Embedding config
 * gains fields (maskZero: null, dtype, …) on a save → load round trip, so only its class counts.
 */
const layerConfigs = (model: tf.LayersModel) =>
  model.layers.map((l) =>
    JSON.stringify(
      OVQ_LAYERS.has(l.getClassName())
        ? { class: l.getClassName(), config: l.getConfig() }
        : { class: l.getClassName() },
    ),
  );

async function runModel(request: ModelRequest): Promise<ModelResult> {
  const start = tf.memory().numTensors;
  const x = tf.tensor2d(request.tokens, [request.batch, request.seqLen], 'int32');
  const labels = tf.tidy(() =>
    tf.oneHot(tf.tensor2d(request.targets, [request.batch, request.seqLen], 'int32'), CLASSES),
  );
  const model = buildModel();

  // Train first, so that the saved weights differ from the seeded initial ones: a load that
  // re-initialised instead of restoring would then give different outputs.
  const optimizer = tf.train.adam(0.01);
  const loss = () =>
    tf.losses.softmaxCrossEntropy(labels, model.apply(x) as tf.Tensor) as tf.Scalar;
  const snapshot = () =>
    Promise.all(model.trainableWeights.map(async (w) => Array.from(await w.read().data())));
  const before = await snapshot();
  optimizer.minimize(loss);
  const after = await snapshot();
  const count = tf.memory().numTensors;
  optimizer.minimize(loss);
  const leakedByStep = tf.memory().numTensors - count;

  const url = `indexeddb://ovq-tfjs-browser-test-${tf.getBackend()}`;
  const yBefore = model.predict(x) as tf.Tensor;
  await model.save(url);
  const loaded = await tf.loadLayersModel(url);
  await tf.io.removeModel(url);
  const yLoaded = loaded.predict(x) as tf.Tensor;
  const saved = await Promise.all(model.weights.map((w) => w.read().data()));
  const restored = await Promise.all(loaded.weights.map((w) => w.read().data()));

  const result = {
    backend: tf.getBackend(),
    predicted: Array.from(await yBefore.data()),
    predictedByLoaded: Array.from(await yLoaded.data()),
    layerConfigs: layerConfigs(model),
    loadedLayerConfigs: layerConfigs(loaded),
    trainableWeights: model.trainableWeights.map((w) => w.originalName),
    unchangedByStep: model.trainableWeights
      .filter((_, i) => before[i].every((value, j) => value === after[i][j]))
      .map((w) => w.originalName),
    leakedByStep,
    notRestored: model.weights
      .filter(
        (w, i) =>
          loaded.weights[i]?.originalName !== w.originalName ||
          saved[i].some((value, j) => value !== restored[i][j]),
      )
      .map((w) => w.originalName),
  };
  tf.dispose([x, labels, yBefore, yLoaded]);
  optimizer.dispose();
  model.dispose();
  loaded.dispose();
  return { ...result, leaked: tf.memory().numTensors - start };
}

export const api = { useBackend, adapterInfo, runMixer, runModel };
export type PageApi = typeof api;

(globalThis as unknown as { ovqTfjs: PageApi }).ovqTfjs = api;
