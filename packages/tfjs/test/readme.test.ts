// The README example, run as written (imports adapted to the package's sources).
import { expect, it } from 'vitest';
import { OvqAttention, SoftmaxAttention } from '../src/index.js';
import { tf, useBackend } from './backends.js';

it('README example builds the model and streams a token', async () => {
  await useBackend('cpu');
  const dim = 32;
  const input = tf.input({ shape: [null], dtype: 'int32' });
  const x = tf.layers.embedding({ inputDim: 24, outputDim: dim }).apply(input) as tf.SymbolicTensor;
  const swa = new SoftmaxAttention({ heads: 2, keyDim: 16, window: 2, ropeBase: 10000 });
  const h1 = tf.layers.add().apply([x, swa.apply(x) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const ovq = new OvqAttention({ heads: 2, keyDim: 16, chunkSize: 8, capacity: 32 });
  const h2 = tf.layers.add().apply([h1, ovq.apply(h1) as tf.SymbolicTensor]) as tf.SymbolicTensor;
  const logits = tf.layers.dense({ units: 8 }).apply(h2) as tf.SymbolicTensor;
  const model = tf.model({ inputs: input, outputs: logits });

  const state = ovq.createState(1);
  const token = tf.randomNormal([1, 1, dim]);
  const y = ovq.step(token, state);
  expect(y.shape).toEqual([1, 1, dim]);
  expect(ovq.dictionaryHealth(state)[0].size).toBe(0);
  expect(ovq.stateSize(100_000)).toBe(2 * (32 * 33 + 8 * 32));
  expect((model.predict(tf.zeros([1, 5], 'int32')) as tf.Tensor).shape).toEqual([1, 5, 8]);
  tf.dispose([token, y]);
  model.dispose();
});
