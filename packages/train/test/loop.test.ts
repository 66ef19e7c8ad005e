import '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clipByGlobalNorm,
  DEFAULT_TRAIN_CONFIG,
  decodeCheckpoint,
  type MixerFactory,
  type TrainConfig,
  train,
} from '../src/index.js';

/** A minimal causal mixer for exercising the loop: softmax attention from tf ops (one head). */
const testMixer: MixerFactory = (_kind, { dModel, layerIndex }) => {
  const wq = tf.variable(
    tf.randomNormal([dModel, dModel], 0, 0.1, 'float32', layerIndex + 1),
    true,
    `wq${layerIndex}-${Math.random()}`,
  );
  const wk = tf.variable(
    tf.randomNormal([dModel, dModel], 0, 0.1, 'float32', layerIndex + 2),
    true,
    `wk${layerIndex}-${Math.random()}`,
  );
  return {
    trainableWeights: [
      { name: 'wq', read: () => wq },
      { name: 'wk', read: () => wk },
    ],
    apply: (x: tf.Tensor) =>
      tf.tidy(() => {
        const T = x.shape[1]!;
        const [B, , D] = x.shape as number[];
        const x2 = tf.reshape(x, [-1, D]);
        const q = tf.reshape(tf.matMul(x2, wq), [B, T, D]);
        const k = tf.reshape(tf.matMul(x2, wk), [B, T, D]);
        const mask = tf.linalg.bandPart(tf.ones([T, T]), -1, 0);
        const logits = tf.add(tf.matMul(q, k, false, true), tf.mul(tf.sub(1, mask), -1e9));
        return tf.matMul(tf.softmax(logits), x);
      }),
    stateSize: (T: number) => T * 2 * dModel,
  };
};

const config: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG,
  task: { name: 'mqar', vocabSize: 32, numPairs: 2 },
  model: { dModel: 16, heads: 1, layers: 2, mixers: 'swa,ovq' },
  seqLen: 16,
  batchSize: 4,
  steps: 6,
  warmup: 2,
  evalEvery: 3,
  evalBatches: 1,
  evalBatchSize: 4,
  evalLengths: [1, 2],
};

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const weightsOf = (r: Awaited<ReturnType<typeof train>>) =>
  new Map([...r.model.variables].map(([n, v]) => [n, Array.from(v.dataSync())]));

describe('training loop', () => {
  it('resume from a checkpoint continues bit-identically', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-train-'));
    const straight = await train(config, { createMixer: testMixer });
    const path = join(dir, 'ckpt.bin');
    const metricsPath = join(dir, 'metrics.jsonl');
    await train({ ...config, steps: 3 }, { createMixer: testMixer, checkpointPath: path });
    // Resuming may only extend `steps`: the saved config said 3, this run says 6.
    const resumed = await train(config, {
      createMixer: testMixer,
      checkpointPath: path,
      resume: true,
      metricsPath,
    });
    expect(weightsOf(resumed)).toEqual(weightsOf(straight));
    expect(resumed.finalLoss).toBe(straight.finalLoss);
    const lines = readFileSync(metricsPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.type === 'step').map((l) => l.step)).toEqual([4, 5, 6]);
    expect(lines.at(-1).results.map((r: { seqLen: number }) => r.seqLen)).toEqual([16, 32]);
  });

  it('a checkpoint is versioned and a corrupt one is rejected with the path named', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-train-'));
    const path = join(dir, 'ckpt.bin');
    await train({ ...config, steps: 3 }, { createMixer: testMixer, checkpointPath: path });
    const bytes = new Uint8Array(readFileSync(path));
    const c = decodeCheckpoint(bytes);
    expect(c.step).toBe(3);
    expect(c.optimizerStep).toBe(3);
    expect(c.m.size).toBe(c.weights.size);
    const future = bytes.slice();
    new DataView(future.buffer).setUint32(4, 9, true);
    writeFileSync(path, future);
    await expect(
      train(config, { createMixer: testMixer, checkpointPath: path, resume: true }),
    ).rejects.toThrow(/ckpt\.bin: format version 9; this build reads version 1/);
    expect(() => decodeCheckpoint(bytes.subarray(0, bytes.length - 4))).toThrow(
      /runs past the end/,
    );
  });

  it('clipByGlobalNorm over 23 gradients (addN in chunks for webgpu) returns the norm of one addN, bit for bit, and clips to it', async () => {
    const grads = new Map(
      Array.from({ length: 23 }, (_, i) => [
        `g${i}`,
        tf.randomNormal([3 + (i % 4), 5], 0, 1 + i / 7, 'float32', i + 1),
      ]),
    );
    const expected = tf.tidy(
      () => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0],
    );
    const before = tf.memory().numTensors;
    const norm = await clipByGlobalNorm(grads, 1);
    expect(tf.memory().numTensors).toBe(before);
    expect(norm).toBe(expected);
    expect(norm).toBeGreaterThan(1);
    const clipped = tf.tidy(
      () => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))).dataSync()[0],
    );
    expect(clipped).toBeCloseTo(1, 5);
    tf.dispose([...grads.values()]);
  });

  it('loss goes down on an easy task', async () => {
    const r = await train(
      {
        ...config,
        steps: 40,
        lr: 1e-2,
        evalEvery: 40,
        task: { name: 'mqar', vocabSize: 16, numPairs: 1 },
      },
      { createMixer: testMixer },
    );
    expect(r.evals[0].loss).toBeLessThan(Math.log(16) * 0.8);
  });

  it('bad configs fail before training with the field named', async () => {
    await expect(
      train(
        { ...config, model: { ...config.model, mixers: 'swa,ovqq' } },
        { createMixer: testMixer },
      ),
    ).rejects.toThrow(/unknown mixer "ovqq"/);
    await expect(train({ ...config, seqLen: 15 }, { createMixer: testMixer })).rejects.toThrow(
      /mqar: seqLen is 15/,
    );
    await expect(train({ ...config, lr: 0 }, { createMixer: testMixer })).rejects.toThrow(
      /lr: got 0/,
    );
    await expect(
      train(
        { ...config, task: { name: 'byte-lm', corpus: '/nonexistent/corpus' } },
        { createMixer: testMixer },
      ),
    ).rejects.toThrow(/nonexistent/);
  });
});
