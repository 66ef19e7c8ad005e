// The layer check every backend route shares: the full-sequence call equals `stepAsync` over a
// split of the sequence (host streaming state), and two SGD steps change every trainable weight, the second
// leaving no tensor behind.
import { assertClose, createRng } from '@ovq/core/testing';
import { expect } from 'vitest';
import type { MixerLayer } from '../src/index.js';
import { randomTensor, tf } from './backends.js';

/** Runs the check on a [2, seqLen, 12] input split after `split` tokens. */
export async function checkLayerStreamsAndTrains(
  label: string,
  layer: MixerLayer<unknown>,
  { seed = 6, seqLen = 19, split = 7 } = {},
): Promise<void> {
  const x = randomTensor(createRng(seed), [2, seqLen, 12]);
  const full = layer.apply(x) as tf.Tensor;
  const state = layer.createState(2);
  const a = await layer.stepAsync(tf.slice(x, [0, 0, 0], [2, split, 12]), state);
  const b = await layer.stepAsync(tf.slice(x, [0, split, 0], [2, seqLen - split, 12]), state);
  const streamed = tf.concat([a, b], 1);
  assertClose(`${label}: call vs stepAsync`, await full.data(), await streamed.data(), 1e-4);

  const optimizer = tf.train.sgd(0.1);
  const loss = () => tf.mean(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar;
  // Trainable weights: VQ's codebook statistics move by EMA k-means, not by the optimizer.
  const before = await Promise.all(layer.trainableWeights.map((w) => w.read().data()));
  optimizer.minimize(loss);
  const count = tf.memory().numTensors;
  optimizer.minimize(loss);
  expect(tf.memory().numTensors, `${label}: tensors leaked by a training step`).toBe(count);
  const after = await Promise.all(layer.trainableWeights.map((w) => w.read().data()));
  layer.trainableWeights.forEach((w, i) => {
    expect(Array.from(after[i]), `${label}: ${w.name} did not change`).not.toEqual(
      Array.from(before[i]),
    );
  });
  tf.dispose([x, full, a, b, streamed]);
  optimizer.dispose();
}
