// The output head at scored positions only (modelLoss) and the gather/scatter embedding must give
// the same loss, predictions and gradients as the full head over a one-hot embedding.
import '@tensorflow/tfjs';
import { assertClose } from '@ovq/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  batchInputs,
  batchLoss,
  createTfjsMixer,
  Decoder,
  embedTokens,
  headAtScoredOnly,
  modelLoss,
  mqarTask,
  scoredPositions,
} from '../src/index.js';
import { IGNORE, type TokenBatch } from '../src/tasks/types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function model(mixers: string) {
  const m = new Decoder(
    {
      vocabSize: 96,
      dModel: 16,
      heads: 2,
      layers: 2,
      mixers,
      mixerOptions: { window: 8, ovqCapacity: 8, ovqChunkSize: 8 },
      seed: 5,
    },
    createTfjsMixer,
  );
  m.build();
  return m;
}

function grads(m: Decoder, loss: () => tf.Scalar) {
  const { value, grads } = tf.variableGrads(loss, [...m.variables.values()]);
  const out = new Map(Object.entries(grads).map(([k, g]) => [k, g.dataSync().slice()]));
  const v = value.dataSync()[0];
  tf.dispose([value, ...Object.values(grads)]);
  return { value: v, grads: out };
}

describe('embedTokens', () => {
  it('equals a one-hot product in value and in the table gradient (repeated ids summed)', () => {
    const table = tf.variable(tf.randomNormal([11, 5], 0, 1, 'float32', 1));
    const ids = tf.tensor2d([3, 3, 0, 10, 7, 3, 0, 1], [2, 4], 'int32');
    const weights = tf.randomNormal([2, 4, 5], 0, 1, 'float32', 2);
    const ours = tf.variableGrads(() => tf.sum(tf.mul(embedTokens(ids, table), weights)), [table]);
    const dense = tf.variableGrads(
      () =>
        tf.sum(
          tf.mul(
            tf.matMul(tf.cast(tf.oneHot(tf.reshape(ids, [-1]), 11), 'float32'), table),
            tf.reshape(weights, [8, 5]),
          ),
        ),
      [table],
    );
    expect(ours.value.dataSync()[0]).toBeCloseTo(dense.value.dataSync()[0], 4);
    const g = ours.grads[table.name].dataSync();
    expect(Array.from(g).some((x) => x !== 0)).toBe(true);
    // Row 2 is never looked up: exactly zero; row 3 is looked up three times.
    expect(Array.from(g.subarray(10, 15))).toEqual([0, 0, 0, 0, 0]);
    assertClose('dTable', dense.grads[table.name].dataSync(), g, 1e-6);
  });
});

describe('modelLoss: the output head at scored positions only', () => {
  const task = mqarTask({ vocabSize: 96, numPairs: 4 });
  const batch = task.sample(3, 40, 9) as TokenBatch;

  it('is used for recall batches and not for fully scored ones', () => {
    expect(headAtScoredOnly(batch)).toBe(true);
    const positions = scoredPositions(batch);
    expect(positions.length).toBe(batch.targets.filter((t) => t !== IGNORE).length);
    expect(positions.length).toBeGreaterThan(0);
    const allScored: TokenBatch = {
      ...batch,
      targets: batch.targets.map((t) => (t === IGNORE ? 1 : t)),
    };
    expect(headAtScoredOnly(allScored)).toBe(false);
  });

  for (const mixers of ['swa,ovq', 'swa,softmax']) {
    it(`${mixers}: same loss, gradients and scored predictions as the full head`, () => {
      const m = model(mixers);
      const full = grads(m, () => batchLoss(m.forward(batchInputs(batch)), batch));
      const scored = grads(m, () => modelLoss(m, batch).loss);
      expect(Number.isFinite(scored.value)).toBe(true);
      expect(scored.value).toBeCloseTo(full.value, 5);
      expect(scored.grads.size).toBe(full.grads.size);
      for (const [name, g] of full.grads) {
        const ours = scored.grads.get(name);
        if (!ours) throw new Error(`no gradient for ${name}`);
        assertClose(`d${name}`, g, ours, 1e-4);
      }
      const argmax = tf.tidy(() => tf.argMax(m.forward(batchInputs(batch)), -1).dataSync());
      const { loss, predictions } = modelLoss(m, batch, true);
      const picked = predictions?.dataSync();
      tf.dispose([loss, predictions as tf.Tensor]);
      if (!picked) throw new Error('no predictions');
      batch.targets.forEach((t, i) => {
        expect(picked[i]).toBe(t === IGNORE ? -1 : argmax[i]);
      });
      m.dispose();
    });
  }

  it('forwardAt rejects a position outside the batch, naming it', () => {
    const m = model('swa,ovq');
    expect(() =>
      tf.tidy(() => m.forwardAt(batchInputs(batch), Int32Array.from([0, 3 * 40]))),
    ).toThrow(/positions\[1\]: got 120; expected an integer in \[0, 120\)/);
    m.dispose();
  });
});
