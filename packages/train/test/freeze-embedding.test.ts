// model.freezeEmbedding: the seeded embedding is not trained, not checkpointed, and rebuilt
// identically from the seed when a checkpoint is loaded.
import '@tensorflow/tfjs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createTfjsMixer,
  DEFAULT_TRAIN_CONFIG,
  loadTrainedModel,
  type TrainConfig,
  train,
  validateTrainConfig,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const config: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG,
  task: { name: 'mqar', vocabSize: 64, numPairs: 2 },
  model: { dModel: 16, heads: 2, layers: 2, mixers: 'swa,ovq', freezeEmbedding: true },
  seqLen: 16,
  batchSize: 4,
  steps: 4,
  warmup: 1,
  evalEvery: 4,
  evalBatches: 1,
  evalBatchSize: 4,
};

describe('model.freezeEmbedding', () => {
  it('trains everything but the embedding, which a loaded checkpoint rebuilds from the seed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-frozen-'));
    try {
      const path = join(dir, 'ckpt.bin');
      const trained = await train(config, { createMixer: createTfjsMixer, checkpointPath: path });
      expect(trained.model.variables.has('embedding')).toBe(false);
      expect(trained.model.variables.has('final_norm')).toBe(true);
      const unfrozen = await train(
        { ...config, steps: 1, model: { ...config.model, freezeEmbedding: false } },
        { createMixer: createTfjsMixer },
      );
      expect(unfrozen.model.variables.has('embedding')).toBe(true);
      const loaded = await loadTrainedModel(path, createTfjsMixer);
      const tokens = tf.tensor2d(
        Int32Array.from({ length: 32 }, (_, i) => (i * 5) % 64),
        [2, 16],
        'int32',
      );
      const a = tf.tidy(() => trained.model.forward(tokens).dataSync());
      const b = tf.tidy(() => loaded.model.forward(tokens).dataSync());
      expect(Array.from(a).every(Number.isFinite)).toBe(true);
      expect(b).toEqual(a);
      tokens.dispose();
      for (const m of [trained.model, unfrozen.model, loaded.model]) m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('is validated: a non-boolean is refused by name', () => {
    expect(() =>
      validateTrainConfig({
        ...config,
        model: { ...config.model, freezeEmbedding: 'yes' as unknown as boolean },
      }),
    ).toThrow(/model\.freezeEmbedding: got "yes"; expected true or false/);
  });
});
