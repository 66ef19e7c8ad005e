// Transformer-VQ trained as its paper does inside the training loop: the commitment term joins the
// loss, the EMA k-means update follows each applied step, and the EMA statistics are checkpointed
// so a resumed run is byte-identical to an uninterrupted one.
import '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createTasksSync,
  createTfjsMixer,
  DEFAULT_TRAIN_CONFIG,
  Decoder,
  decodeCheckpoint,
  modelLoss,
  readCheckpointFile,
  type TrainConfig,
  train,
  trainingLoss,
} from '../src/index.js';

const config: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG,
  task: { name: 'mqar', vocabSize: 32, numPairs: 2 },
  model: {
    dModel: 16,
    heads: 2,
    layers: 2,
    mixers: 'swa,vq',
    mixerOptions: { window: 4, vqCodes: 8, ovqChunkSize: 4 },
  },
  seqLen: 16,
  batchSize: 4,
  steps: 6,
  warmup: 2,
  evalEvery: 3,
  evalBatches: 1,
  evalBatchSize: 4,
  evalLengths: [1],
};

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const valuesOf = (m: Map<string, tf.Variable>) =>
  new Map([...m].map(([n, v]) => [n, Array.from(v.dataSync())]));

describe('Transformer-VQ in the training loop', () => {
  it('the training loss adds β_c·commitment of the training forward; an evaluation forward records nothing', () => {
    const model = new Decoder({ ...config.model, vocabSize: 32, seed: 1 }, createTfjsMixer);
    model.build();
    expect([...model.buffers.keys()]).toEqual(['block1.vq.code_sums', 'block1.vq.code_counts']);
    const batch = createTasksSync(
      config.task as Exclude<TrainConfig['task'], { name: 'byte-lm' }>,
    ).sample(4, 16, 5);
    const task = modelLoss(model, batch).loss;
    expect(model.auxiliaryLoss()).toBeNull();
    const total = trainingLoss(model, batch);
    const aux = model.auxiliaryLoss();
    expect(aux).not.toBeNull();
    const [t, a, s] = [task, aux!, total].map((x) => x.dataSync()[0]);
    expect(a).toBeGreaterThan(0);
    expect(s).toBeCloseTo(t + a, 5);
    const before = valuesOf(model.buffers);
    model.endTrainingStep(true);
    expect(model.auxiliaryLoss()).toBeNull();
    const after = valuesOf(model.buffers);
    for (const name of before.keys()) expect(after.get(name)).not.toEqual(before.get(name));
    tf.dispose([task, total, aux!]);
    model.dispose();
  });

  it('the EMA statistics are checkpointed: resume is byte-identical to an uninterrupted run, codebook included', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-vq-'));
    const path = join(dir, 'ckpt.bin');
    const straight = await train(config, { createMixer: createTfjsMixer });
    await train({ ...config, steps: 3 }, { createMixer: createTfjsMixer, checkpointPath: path });
    const saved = decodeCheckpoint(await readCheckpointFile(path), path);
    expect(saved.weights.has('block1.vq.code_sums')).toBe(true);
    expect(saved.weights.has('block1.vq.code_counts')).toBe(true);
    expect(saved.m.has('block1.vq.code_sums')).toBe(false); // not an optimizer variable
    const resumed = await train(config, {
      createMixer: createTfjsMixer,
      checkpointPath: path,
      resume: true,
    });
    expect(valuesOf(resumed.model.variables)).toEqual(valuesOf(straight.model.variables));
    expect(valuesOf(resumed.model.buffers)).toEqual(valuesOf(straight.model.buffers));
    expect(resumed.finalLoss).toBe(straight.finalLoss);
    // The codebook moved away from its initialisation (counts start at 1); evaluations report
    // its usage. The trainer restarts dead codes at 2 keys per step, so after a step every code
    // holds n ≥ 2 (kept codes) or exactly 2 (restarted ones); counts started at 1.
    const counts = straight.model.buffers.get('block1.vq.code_counts')!.dataSync();
    expect(Array.from(counts).some((n) => n !== 1)).toBe(true);
    const usage = straight.evals.at(-1)!.codebooks!;
    expect(usage.map((u) => [u.layer, u.kind, u.codes])).toEqual([[1, 'vq', 8]]);
    expect(usage[0].countMin).toBeGreaterThanOrEqual(2 - 1e-5);
    // The paper's recipe (no restarts): here every key goes to one code, so per head
    // Σn ← γΣn + (1 − γ)·64 (4 × 16 keys), from Σn = 8: after 6 applied steps Σn = 64 − 56·0.99⁶.
    const paper = await train(
      {
        ...config,
        model: {
          ...config.model,
          mixerOptions: { ...config.model.mixerOptions, vqDeadCodeThreshold: 0 },
        },
      },
      { createMixer: createTfjsMixer },
    );
    const paperUsage = paper.evals.at(-1)!.codebooks![0];
    expect(paperUsage.countMean * 8).toBeCloseTo(64 - 56 * 0.99 ** 6, 3);
    expect(paperUsage.countMin).toBeLessThan(2); // codes no key chose were not restarted
    paper.model.dispose();
    for (const t of [...saved.weights.values(), ...saved.m.values(), ...saved.v.values()])
      t.dispose();
    straight.model.dispose();
    resumed.model.dispose();
  });
});
