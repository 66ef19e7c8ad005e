import '@tensorflow/tfjs';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  clipByGlobalNorm,
  createTasksSync,
  DEFAULT_TRAIN_CONFIG,
  decodeCheckpoint,
  type MixerFactory,
  mqarTask,
  type TrainConfig,
  type TrainEvent,
  train,
  validateTrainConfig,
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

  it('learns MQAR beyond what knowing only the value half of the vocabulary allows', async () => {
    const task = { name: 'mqar' as const, vocabSize: 16, numPairs: 1 };
    // MQAR answers are drawn uniformly from the value half [⌊V/2⌋, V) of the vocabulary: a model
    // that learned only that can do no better than 1/|value half| accuracy and ln|value half| loss.
    const valueHalf = task.vocabSize - Math.floor(task.vocabSize / 2);
    const targets = Array.from(mqarTask(task).sample(64, 16, 5).targets).filter((t) => t >= 0);
    expect(targets.every((t) => t >= Math.floor(task.vocabSize / 2))).toBe(true);
    const ceiling = 1 / valueHalf;
    const r = await train(
      {
        ...config,
        steps: 60,
        lr: 1e-2,
        warmup: 5,
        batchSize: 8,
        evalEvery: 60,
        evalBatches: 4,
        evalBatchSize: 16,
        evalLengths: [1],
        task,
      },
      { createMixer: testMixer },
    );
    // 64 scored queries: at the ceiling (12.5%) the standard error is ~4%, so 3× the ceiling is
    // far outside what the value-half model could reach by chance.
    expect(r.evals[0].metric).toBeGreaterThan(3 * ceiling);
    expect(r.evals[0].loss).toBeLessThan(Math.log(valueHalf) - 0.1);
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

  it('a signal finishes the step in flight and saves it; the resumed run is byte-identical to an uninterrupted one, each step logged once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-train-'));
    const straightPath = join(dir, 'straight.bin');
    (await train(config, { createMixer: testMixer, checkpointPath: straightPath })).model.dispose();
    const path = join(dir, 'ckpt.bin');
    const metricsPath = join(dir, 'metrics.jsonl');
    const controller = new AbortController();
    const first = await train(config, {
      createMixer: testMixer,
      checkpointPath: path,
      metricsPath,
      signal: controller.signal,
      // The signal arrives while step 4 is being trained (evalEvery 3: no checkpoint of its own).
      onEvent: (e) => {
        if (e.type === 'step' && e.step === 4) controller.abort();
      },
    });
    first.model.dispose();
    expect(first.interrupted).toBe(true);
    expect(first.steps).toBe(4);
    expect(decodeCheckpoint(new Uint8Array(readFileSync(path))).step).toBe(4);
    // Then a kill in the middle of writes: a stale temporary and a metrics line cut short.
    writeFileSync(`${path}.tmp-99999-0123456789ab`, 'half a checkpoint');
    writeFileSync(metricsPath, `${readFileSync(metricsPath, 'utf8')}{"type":"step","step":5,"lo`);
    for (let i = 0; i < 2; i++) {
      // The second resume finds the run complete: it must not log anything twice either.
      const resumed = await train(config, {
        createMixer: testMixer,
        checkpointPath: path,
        metricsPath,
        resume: true,
      });
      resumed.model.dispose();
      expect(resumed.interrupted).toBe(false);
    }
    expect(Buffer.compare(readFileSync(path), readFileSync(straightPath))).toBe(0);
    expect(readdirSync(dir).filter((n) => n.includes('.tmp-'))).toEqual([]);
    const records = readFileSync(metricsPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(records.filter((r) => r.type === 'step').map((r) => r.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(records.filter((r) => r.type === 'eval').map((r) => r.step)).toEqual([3, 6]);
    expect(records.filter((r) => r.type === 'interrupted').map((r) => r.step)).toEqual([4]);
  });

  it('a fresh run empties an old metrics log and removes stale checkpoint temporaries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-train-'));
    const path = join(dir, 'ckpt.bin');
    const metricsPath = join(dir, 'metrics.jsonl');
    writeFileSync(metricsPath, '{"type":"step","step":1,"loss":9}\n');
    writeFileSync(`${path}.tmp-4242-feedfacecafe`, 'stale');
    const r = await train(
      { ...config, steps: 2 },
      { createMixer: testMixer, checkpointPath: path, metricsPath },
    );
    r.model.dispose();
    const steps = readFileSync(metricsPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => x.type === 'step');
    expect(steps.map((x) => x.step)).toEqual([1, 2]);
    expect(steps[0].loss).not.toBe(9);
    expect(existsSync(`${path}.tmp-4242-feedfacecafe`)).toBe(false);
  });

  it('a non-finite gradient skips the whole update, is counted, and K in a row stop the run', async () => {
    // The mixer's output is finite but its gradient is NaN while `poisoned` is set.
    let poisoned = false;
    const nanGradient = tf.customGrad(((x: tf.Tensor) => ({
      value: tf.clone(x),
      gradFunc: (dy: tf.Tensor) => tf.mul(dy, Number.NaN),
    })) as unknown as Parameters<typeof tf.customGrad>[0]) as (x: tf.Tensor) => tf.Tensor;
    const poisonable: MixerFactory = (kind, shape, options) => {
      const inner = testMixer(kind, shape, options);
      return {
        ...inner,
        apply: (x: tf.Tensor) => {
          const y = (inner.apply as (t: tf.Tensor) => tf.Tensor)(x);
          if (!poisoned) return y;
          const z = nanGradient(y);
          y.dispose();
          return z;
        },
      };
    };
    const dir = mkdtempSync(join(tmpdir(), 'ovq-train-'));
    const path = join(dir, 'ckpt.bin');
    const metricsPath = join(dir, 'metrics.jsonl');
    const saved = new Map<number, Uint8Array>();
    const events: TrainEvent[] = [];
    // Steps 3 and 4 are poisoned (the flag is set as step 2 ends and cleared as step 4 ends).
    const onEvent = (e: TrainEvent) => {
      events.push(e);
      if (e.type === 'step') poisoned = e.step === 2 || e.step === 3;
      if (e.type === 'checkpoint') saved.set(e.step, new Uint8Array(readFileSync(path)));
    };
    const r = await train(
      { ...config, evalEvery: 6 },
      { createMixer: poisonable, checkpointPath: path, metricsPath, checkpointEvery: 1, onEvent },
    );
    r.model.dispose();
    const steps = events.filter((e) => e.type === 'step');
    expect(steps.map((e) => e.skipped)).toEqual([false, false, true, true, false, false]);
    expect(steps.map((e) => e.skippedSteps)).toEqual([0, 0, 1, 2, 2, 2]);
    expect(Number.isFinite(steps[2].gradNorm)).toBe(false);
    expect(r.skippedSteps).toBe(2);
    expect(Number.isFinite(r.finalLoss)).toBe(true);
    // No half-applied update: weights and AdamW moments after the skipped steps are those of
    // step 2, bit for bit, and the optimizer's step count did not move.
    const at2 = decodeCheckpoint(saved.get(2)!);
    const at4 = decodeCheckpoint(saved.get(4)!);
    expect(at4.optimizerStep).toBe(2);
    for (const key of ['weights', 'm', 'v'] as const) {
      for (const [name, t] of at2[key])
        expect(at4[key].get(name)!.dataSync()).toEqual(t.dataSync());
    }
    expect(decodeCheckpoint(saved.get(5)!).optimizerStep).toBe(3);
    const logged = readFileSync(metricsPath, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => x.type === 'step');
    expect(logged.map((x) => x.skipped)).toEqual([false, false, true, true, false, false]);

    // Poisoned from step 3 on: the run stops after 3 skipped steps in a row, naming the cause.
    poisoned = false;
    await expect(
      train(config, {
        createMixer: poisonable,
        maxNonFiniteSteps: 3,
        onEvent: (e) => {
          if (e.type === 'step' && e.step === 2) poisoned = true;
        },
      }),
    ).rejects.toThrow(
      /training stopped at step 5: 3 steps in a row had a non-finite gradient norm/,
    );
    poisoned = false;
  });

  it('config keys: an unknown one is refused with a did-you-mean, wrong types name the field', () => {
    const bad = (c: unknown) => () => validateTrainConfig(c as TrainConfig);
    expect(bad({ ...config, stpes: 5 })).toThrow(/^stpes: unknown key; did you mean "steps"\?/);
    expect(bad({ ...config, windw: 8 })).toThrow(
      /^windw: unknown key; did you mean "model\.mixerOptions\.window"\?/,
    );
    expect(bad({ ...config, model: { ...config.model, dmodel: 32 } })).toThrow(
      /^model\.dmodel: unknown key; did you mean "model\.dModel"\?/,
    );
    expect(bad({ ...config, model: { ...config.model, mixerOptions: { windw: 8 } } })).toThrow(
      /^model\.mixerOptions\.windw: unknown key; did you mean "model\.mixerOptions\.window"\?/,
    );
    expect(bad({ ...config, task: { ...config.task, numPiars: 3 } })).toThrow(
      /^task\.numPiars: unknown key; did you mean "task\.numPairs"\?/,
    );
    expect(bad({ ...config, zzzzzz: 1 })).toThrow(
      /^zzzzzz: unknown key; expected one of task, model/,
    );
    expect(bad({ ...config, steps: '10' })).toThrow(
      /^steps: got "10"; expected a positive integer/,
    );
    expect(bad({ ...config, seed: 1.5 })).toThrow(
      /^seed: got 1\.5; expected a non-negative integer/,
    );
    expect(bad({ ...config, model: { ...config.model, dModel: 30, heads: 4 } })).toThrow(
      /^model\.dModel: 30 is not divisible by model\.heads = 4/,
    );
    expect(bad({ ...config, model: { ...config.model, mixerOptions: { window: 0 } } })).toThrow(
      /^model\.mixerOptions\.window: got 0; expected a positive integer/,
    );
    // The decay gate's initial bias is any finite number (negative: a longer memory).
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { decayBiasInit: '-7' } } }),
    ).toThrow(/^model\.mixerOptions\.decayBiasInit: got "-7"; expected a finite number/);
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { decayBiasInit: -7 } } }),
    ).not.toThrow();
    expect(bad({ ...config, model: { ...config.model, mixerOptions: { vqBeta: 0 } } })).toThrow(
      /^model\.mixerOptions\.vqBeta: got 0; expected a number > 0/,
    );
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { gdnOutputNorm: 'yes' } } }),
    ).toThrow(/^model\.mixerOptions\.gdnOutputNorm: got "yes"; expected true or false/);
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { ovqOutputNorm: 1 } } }),
    ).toThrow(/^model\.mixerOptions\.ovqOutputNorm: got 1; expected true or false/);
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { vqCacheKeyGradient: 'on' } } }),
    ).toThrow(/^model\.mixerOptions\.vqCacheKeyGradient: got "on"; expected true or false/);
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { gdnWriteBiasInit: null } } }),
    ).toThrow(/^model\.mixerOptions\.gdnWriteBiasInit: got null; expected a finite number/);
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { vqDeadCodeThreshold: -1 } } }),
    ).toThrow(/^model\.mixerOptions\.vqDeadCodeThreshold: got -1; expected a finite number ≥ 0/);
    expect(
      bad({ ...config, model: { ...config.model, mixerOptions: { vqDeadCodeThreshold: 0 } } }),
    ).not.toThrow();
    expect(
      bad({ ...config, task: { name: 'mqar', vocabSize: 16, numPairs: 2 }, weightDecay: -1 }),
    ).toThrow(/^weightDecay: got -1/);
    expect(() => createTasksSync(config.task as never)).not.toThrow();
  });
});
