// Training on the tfjs webgpu backend (Dawn in Node; SwiftShader without a GPU): every read in the
// loop, evaluation, dictionary health and checkpointing is asynchronous, so the same run works on
// webgpu and agrees with cpu up to float32 rounding.
import '@tensorflow/tfjs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertClose } from '@ovq/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createTasks,
  createTfjsMixer,
  DEFAULT_TRAIN_CONFIG,
  decodeCheckpoint,
  type EvalResult,
  evaluate,
  loadTrainedModel,
  type TrainConfig,
  train,
} from '../src/index.js';
import { webGpuOrSkip } from './webgpu-setup.js';

const reason = await webGpuOrSkip();

const config: TrainConfig = {
  ...DEFAULT_TRAIN_CONFIG,
  task: { name: 'mqar', vocabSize: 32, numPairs: 2 },
  model: {
    dModel: 16,
    heads: 2,
    layers: 2,
    mixers: 'swa,ovq',
    mixerOptions: { window: 8, ovqCapacity: 8, ovqChunkSize: 8 },
  },
  seqLen: 16,
  batchSize: 2,
  steps: 3,
  warmup: 1,
  evalEvery: 3,
  evalBatches: 1,
  evalBatchSize: 2,
  evalLengths: [1],
};

// cpu and webgpu float32 differ by rounding only (summation order, exp/log implementations);
// over 3 AdamW steps of this tiny model that stays far below this relative difference.
const RELATIVE_TOLERANCE = 1e-3;

const closeTo = (a: number, b: number) =>
  Math.abs(a - b) <= RELATIVE_TOLERANCE * Math.max(Math.abs(a), Math.abs(b), 1e-6);

async function trainOn(backend: string) {
  expect(await tf.setBackend(backend)).toBe(true);
  const dir = mkdtempSync(join(tmpdir(), `ovq-train-${backend}-`));
  const checkpointPath = join(dir, 'ckpt.bin');
  const steps: { loss: number; gradNorm: number }[] = [];
  const result = await train(config, {
    createMixer: createTfjsMixer,
    checkpointPath,
    onEvent: (e) => {
      if (e.type === 'step') steps.push({ loss: e.loss, gradNorm: e.gradNorm });
    },
  });
  return { steps, evals: result.evals, model: result.model, checkpointPath };
}

describe.skipIf(reason !== null)('training on webgpu', () => {
  afterAll(async () => {
    await tf.setBackend('cpu');
  });

  it(`swa,ovq (2 layers, d16, T16, B2, 3 steps): losses, grad norms and eval match cpu within ${RELATIVE_TOLERANCE} relative; the checkpoint reloads and re-evaluates identically; stepAsync equals forward`, async () => {
    const cpu = await trainOn('cpu');
    cpu.model.dispose();
    const gpu = await trainOn('webgpu');
    expect(tf.getBackend()).toBe('webgpu');

    expect(gpu.steps).toHaveLength(3);
    gpu.steps.forEach((s, i) => {
      expect(Number.isFinite(s.loss) && Number.isFinite(s.gradNorm)).toBe(true);
      expect(
        closeTo(s.loss, cpu.steps[i].loss),
        `step ${i + 1} loss ${s.loss} vs cpu ${cpu.steps[i].loss}`,
      ).toBe(true);
      expect(
        closeTo(s.gradNorm, cpu.steps[i].gradNorm),
        `step ${i + 1} grad norm ${s.gradNorm} vs cpu ${cpu.steps[i].gradNorm}`,
      ).toBe(true);
    });
    const [gpuEval] = gpu.evals;
    const [cpuEval] = cpu.evals;
    expect(
      closeTo(gpuEval.loss, cpuEval.loss),
      `eval loss ${gpuEval.loss} vs cpu ${cpuEval.loss}`,
    ).toBe(true);
    // Dictionary health streams through stepAsync: present and well-formed on webgpu.
    expect(gpuEval.health?.map((h) => h.kind)).toEqual(['ovq']);
    expect(gpuEval.health![0].size).toBeGreaterThan(0);
    expect(gpuEval.health![0].size).toBeLessThanOrEqual(8);

    // The webgpu checkpoint is complete and reloads to a model that evaluates the same.
    const { readFile } = await import('node:fs/promises');
    const saved = decodeCheckpoint(new Uint8Array(await readFile(gpu.checkpointPath)));
    expect(saved.step).toBe(3);
    expect([...saved.weights.keys()]).toEqual([...gpu.model.variables.keys()]);
    for (const t of [...saved.weights.values(), ...saved.m.values(), ...saved.v.values()])
      t.dispose();
    const loaded = await loadTrainedModel(gpu.checkpointPath, createTfjsMixer);
    const { evaluation } = await createTasks(config.task);
    const again: EvalResult = await evaluate(loaded.model, evaluation, 16, 1, 2, 3);
    expect(again.loss).toBe(gpuEval.loss);
    expect(again.metric).toBe(gpuEval.metric);

    // Decoder.stepAsync over a 5 + 11 split equals forward on webgpu (host OVQ streaming vs the
    // GPU composition: rounding only).
    const tokens = Int32Array.from({ length: 2 * 16 }, (_, i) => (i * 7) % 32);
    const full = tf.tidy(() => loaded.model.forward(tf.tensor2d(tokens, [2, 16], 'int32')));
    const states = loaded.model.createStreamState(2);
    const pieces: tf.Tensor[] = [];
    for (const [from, n] of [
      [0, 5],
      [5, 11],
    ]) {
      const piece = tf.tidy(() =>
        tf.slice(tf.tensor2d(tokens, [2, 16], 'int32'), [0, from], [2, n]),
      );
      pieces.push(await loaded.model.stepAsync(piece, states));
      piece.dispose();
    }
    const streamed = tf.concat(pieces, 1);
    assertClose('stepAsync vs forward', await full.data(), await streamed.data(), 1e-4);
    tf.dispose([full, streamed, ...pieces]);
    gpu.model.dispose();
    loaded.model.dispose();
  });
});
