// A small associative-recall task and a two-layer model for the training test.
// Sequence: P (key, value) pairs as adjacent tokens k₁ v₁ … k_P v_P, then Q queries k_i; the target at
// each query is the value that followed k_i. Keys are ids [0, K), values [K, K + V).
import { createRng } from '@ovq/core/testing';
import { GatedDeltaNet, LinearAttention, OvqAttention, SoftmaxAttention } from '../src/index.js';
import { tf } from './backends.js';

export type RecallTask = { keys: number; values: number; pairs: number; queries: number };

export function makeBatch(task: RecallTask, batch: number, rng: () => number) {
  const { keys: K, values: V, pairs: P, queries: Q } = task;
  const T = 2 * P + Q;
  const tokens = new Int32Array(batch * T);
  const targets = new Int32Array(batch * Q);
  for (let b = 0; b < batch; b++) {
    // P distinct keys, each with a random value.
    const pool = Array.from({ length: K }, (_, i) => i);
    for (let i = 0; i < P; i++) {
      const j = i + Math.floor(rng() * (K - i));
      [pool[i], pool[j]] = [pool[j], pool[i]];
    }
    const vals = pool.slice(0, P).map(() => Math.floor(rng() * V));
    for (let i = 0; i < P; i++) {
      tokens[b * T + 2 * i] = pool[i];
      tokens[b * T + 2 * i + 1] = K + vals[i];
    }
    for (let j = 0; j < Q; j++) {
      const i = Math.floor(rng() * P);
      tokens[b * T + 2 * P + j] = pool[i];
      targets[b * Q + j] = vals[i];
    }
  }
  return { tokens, targets, T };
}

export type ModelKind = 'swa+ovq' | 'swa+swa' | 'swa+linear' | 'swa+gdn';

export function buildModel(kind: ModelKind, task: RecallTask, dim: number, seed: number) {
  const vocab = task.keys + task.values;
  const input = tf.input({ shape: [null], dtype: 'int32' });
  const x = tf.layers
    .embedding({
      inputDim: vocab,
      outputDim: dim,
      embeddingsInitializer: tf.initializers.randomNormal({ stddev: 1, seed }),
    })
    .apply(input) as tf.SymbolicTensor;
  const swa = () =>
    new SoftmaxAttention({
      heads: 2,
      keyDim: dim / 2,
      window: 2,
      ropeBase: 10000,
      seed: seed + 10,
    });
  const h1 = tf.layers.add().apply([x, swa().apply(x) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const head = { heads: 2, keyDim: dim / 2, seed: seed + 20 };
  const second =
    kind === 'swa+ovq'
      ? new OvqAttention({ ...head, chunkSize: 8, capacity: 32, betaInit: 8 })
      : kind === 'swa+linear'
        ? new LinearAttention(head)
        : kind === 'swa+gdn'
          ? new GatedDeltaNet(head)
          : swa();
  const h2 = tf.layers
    .add()
    .apply([h1, second.apply(h1) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const logits = tf.layers
    .dense({
      units: task.values,
      kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 30 }),
    })
    .apply(h2) as tf.SymbolicTensor;
  return tf.model({ inputs: input, outputs: logits });
}

/** Trains for at most `seconds` (or `maxSteps`) and returns held-out accuracy on the queries. */
export async function trainRecall(
  kind: ModelKind,
  task: RecallTask,
  opts: {
    dim: number;
    batch: number;
    lr: number;
    seconds: number;
    maxSteps: number;
    seed: number;
    /** Stop once held-out accuracy (checked every 25 steps) reaches this. */
    target?: number;
  },
) {
  const model = buildModel(kind, task, opts.dim, opts.seed);
  const rng = createRng(opts.seed);
  const optimizer = tf.train.adam(opts.lr);
  const { P, Q } = { P: task.pairs, Q: task.queries };
  const lossOf = (tokens: Int32Array, targets: Int32Array, B: number, T: number) => {
    const logits = model.apply(tf.tensor2d(tokens, [B, T], 'int32')) as tf.Tensor3D;
    const q = tf.slice(logits, [0, 2 * P, 0], [B, Q, task.values]);
    const labels = tf.oneHot(tf.tensor2d(targets, [B, Q], 'int32'), task.values);
    return { q, loss: tf.losses.softmaxCrossEntropy(labels, q) as tf.Scalar };
  };
  const evalRng = createRng(opts.seed + 999);
  const test = makeBatch(task, 256, evalRng);
  // Asynchronous read so that the same loop runs on webgpu.
  const accuracy = async () => {
    const predicted = tf.tidy(() => lossOf(test.tokens, test.targets, 256, test.T).q.argMax(-1));
    const pred = await predicted.data();
    predicted.dispose();
    let hit = 0;
    for (let i = 0; i < pred.length; i++) if (pred[i] === test.targets[i]) hit++;
    return hit / pred.length;
  };
  const start = Date.now();
  let steps = 0;
  while (steps < opts.maxSteps && (Date.now() - start) / 1000 < opts.seconds) {
    const batch = makeBatch(task, opts.batch, rng);
    const loss = optimizer.minimize(
      () => lossOf(batch.tokens, batch.targets, opts.batch, batch.T).loss,
      true,
    );
    steps++;
    loss?.dispose();
    if (opts.target !== undefined && steps % 25 === 0 && (await accuracy()) >= opts.target) break;
  }
  const seconds = (Date.now() - start) / 1000;
  const acc = await accuracy();
  model.dispose();
  optimizer.dispose();
  return { accuracy: acc, steps, seconds };
}
