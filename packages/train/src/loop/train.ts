// The training loop: AdamW with warm-up + cosine, global-norm clipping, periodic evaluation at
// the training length and longer ones, atomic versioned checkpoints, JSONL metrics, and resume
// that continues bit-identically (batches are a pure function of the seed and the step).
import * as tf from '@tensorflow/tfjs-core';
import { decodeCheckpoint, encodeCheckpoint, writeFileAtomic } from '../checkpoint/checkpoint.js';
import {
  Decoder,
  type LayerHealth,
  type MixerFactory,
  type ModelConfig,
} from '../model/decoder.js';
import { AdamW, clipByGlobalNorm, learningRate } from '../optim/adamw.js';
import { maskedMse, tokenAccuracy } from '../tasks/metrics.js';
import { itemSeed } from '../tasks/random.js';
import type { Batch, Task } from '../tasks/types.js';
import { batchInputs, batchLoss } from './loss.js';
import { createTasks, createTasksSync, type TaskSpec, taskShape } from './task-spec.js';

export type TrainConfig = {
  task: TaskSpec;
  model: Omit<ModelConfig, 'vocabSize' | 'inputDim' | 'outputDim' | 'seed'>;
  seqLen: number;
  batchSize: number;
  steps: number;
  lr: number;
  warmup: number;
  weightDecay: number;
  clip: number;
  evalEvery: number;
  evalBatches: number;
  evalBatchSize: number;
  /** Evaluation lengths as multiples of seqLen (length extrapolation), e.g. [1, 4, 8]. */
  evalLengths: number[];
  seed: number;
};

export const DEFAULT_TRAIN_CONFIG: Omit<TrainConfig, 'task' | 'model'> = {
  seqLen: 64,
  batchSize: 16,
  steps: 300,
  lr: 3e-3,
  warmup: 30,
  weightDecay: 0.1,
  clip: 1,
  evalEvery: 100,
  evalBatches: 2,
  evalBatchSize: 16,
  evalLengths: [1],
  seed: 0,
};

export type EvalResult = {
  step: number;
  seqLen: number;
  loss: number;
  /** Accuracy (token tasks) or MSE (vector tasks). */
  metric: number;
  metricName: 'accuracy' | 'mse';
  byPosition?: number[];
  /** Dictionary health of each OVQ layer on the first evaluation batch. */
  health?: LayerHealth[];
};

export type TrainEvent =
  | {
      type: 'step';
      step: number;
      steps: number;
      loss: number;
      lr: number;
      gradNorm: number;
      tokensPerSecond: number;
      elapsed: number;
    }
  | { type: 'eval'; results: EvalResult[] }
  | { type: 'checkpoint'; path: string; step: number };

export type TrainOptions = {
  createMixer: MixerFactory;
  checkpointPath?: string;
  resume?: boolean;
  metricsPath?: string;
  onEvent?: (event: TrainEvent) => void;
};

export type TrainResult = { model: Decoder; evals: EvalResult[]; finalLoss: number; steps: number };

const EVAL_SEED = 0x0e7a1;

/** Evaluates on fixed held-out batches at `seqLen` (reads are awaited, so any backend works). */
export async function evaluate(
  model: Decoder,
  task: Task,
  seqLen: number,
  batches: number,
  batchSize: number,
  step: number,
): Promise<EvalResult> {
  let loss = 0;
  let metric = 0;
  let positions: Float64Array | undefined;
  let health: LayerHealth[] | undefined;
  for (let i = 0; i < batches; i++) {
    const batch: Batch = task.sample(batchSize, seqLen, itemSeed(EVAL_SEED, i));
    if (i === 0 && model.kinds.includes('ovq') && model.canStream()) {
      const inputs = batchInputs(batch);
      health = await model.dictionaryHealth(inputs);
      inputs.dispose();
    }
    const [lossTensor, predictionTensor] = tf.tidy(() => {
      const out = model.forward(batchInputs(batch));
      return [batchLoss(out, batch), batch.kind === 'tokens' ? tf.argMax(out, -1) : out];
    });
    const [lossValues, predictions] = await Promise.all([
      lossTensor.data(),
      predictionTensor.data(),
    ]);
    const l = lossValues[0];
    lossTensor.dispose();
    predictionTensor.dispose();
    loss += l / batches;
    if (batch.kind === 'tokens') {
      const acc = tokenAccuracy(batch, predictions);
      metric += acc.accuracy / batches;
      positions = positions ?? new Float64Array(2 * seqLen);
      // Per position: scored count and hits, so positions never scored stay NaN (not 0).
      for (let t = 0; t < seqLen; t++) {
        const scored = acc.scoredByPosition[t];
        positions[2 * t] += scored;
        positions[2 * t + 1] += scored * (Number.isNaN(acc.byPosition[t]) ? 0 : acc.byPosition[t]);
      }
    } else metric += maskedMse(batch, predictions) / batches;
  }
  return {
    step,
    seqLen,
    loss,
    metric,
    metricName: task.metric,
    byPosition: positions
      ? Array.from({ length: seqLen }, (_, t) =>
          positions[2 * t] > 0 ? positions[2 * t + 1] / positions[2 * t] : Number.NaN,
        )
      : undefined,
    health,
  };
}

export async function train(config: TrainConfig, options: TrainOptions): Promise<TrainResult> {
  validateTrainConfig(config);
  const tasks = await createTasks(config.task);
  const model = new Decoder(
    { ...config.model, ...taskShape(config.task), seed: config.seed },
    options.createMixer,
  );
  model.build(Math.min(config.seqLen, 16));
  const optimizer = new AdamW({ weightDecay: config.weightDecay });
  let start = 0;
  if (options.resume && options.checkpointPath)
    start = await restore(options.checkpointPath, model, optimizer, config);
  const { appendFile } = await import('node:fs/promises');
  const log = async (record: object) => {
    if (options.metricsPath) await appendFile(options.metricsPath, `${JSON.stringify(record)}\n`);
  };
  const evals: EvalResult[] = [];
  const names = new Map([...model.variables].map(([name, v]) => [v.name, name]));
  const varList = [...model.variables.values()];
  const began = performance.now();
  let finalLoss = Number.NaN;
  for (let step = start; step < config.steps; step++) {
    const t0 = performance.now();
    const batch = tasks.train.sample(config.batchSize, config.seqLen, itemSeed(config.seed, step));
    const { value, grads } = tf.variableGrads(
      () => batchLoss(model.forward(batchInputs(batch)), batch),
      varList,
    );
    const named = new Map(Object.entries(grads).map(([k, g]) => [names.get(k) ?? k, g]));
    const gradNorm = await clipByGlobalNorm(named, config.clip);
    const lr = learningRate(step, config.lr, config.warmup, config.steps);
    optimizer.apply(model.variables, named, lr);
    for (const g of named.values()) g.dispose();
    finalLoss = (await value.data())[0];
    value.dispose();
    if (!Number.isFinite(finalLoss))
      throw new Error(
        `training diverged at step ${step}: loss ${finalLoss}; lower lr (${config.lr})`,
      );
    const seconds = (performance.now() - t0) / 1000;
    const event = {
      type: 'step' as const,
      step: step + 1,
      steps: config.steps,
      loss: finalLoss,
      lr,
      gradNorm,
      tokensPerSecond: (config.batchSize * config.seqLen) / seconds,
      elapsed: (performance.now() - began) / 1000,
    };
    options.onEvent?.(event);
    await log(event);
    const last = step + 1 === config.steps;
    if ((step + 1) % config.evalEvery === 0 || last) {
      const results: EvalResult[] = [];
      for (const m of config.evalLengths) {
        results.push(
          await evaluate(
            model,
            tasks.evaluation,
            config.seqLen * m,
            config.evalBatches,
            config.evalBatchSize,
            step + 1,
          ),
        );
      }
      evals.push(...results);
      options.onEvent?.({ type: 'eval', results });
      await log({ type: 'eval', results: results.map(({ byPosition: _, ...r }) => r) });
      if (options.checkpointPath) {
        await saveCheckpoint(options.checkpointPath, model, optimizer, config, step + 1);
        options.onEvent?.({ type: 'checkpoint', path: options.checkpointPath, step: step + 1 });
      }
    }
  }
  optimizer.dispose();
  return { model, evals, finalLoss, steps: config.steps };
}

export async function saveCheckpoint(
  path: string,
  model: Decoder,
  optimizer: AdamW,
  config: TrainConfig,
  step: number,
) {
  const bytes = await encodeCheckpoint({
    step,
    config,
    rng: { seed: config.seed, step },
    optimizerStep: optimizer.step,
    weights: model.variables,
    m: optimizer.m,
    v: optimizer.v,
  });
  await writeFileAtomic(path, bytes);
}

async function restore(
  path: string,
  model: Decoder,
  optimizer: AdamW,
  config: TrainConfig,
): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const c = decodeCheckpoint(new Uint8Array(await readFile(path)), path);
  const saved = JSON.stringify({ ...(c.config as TrainConfig), steps: 0 });
  if (saved !== JSON.stringify({ ...config, steps: 0 })) {
    throw new Error(
      `${path}: checkpoint config differs from this run's (only "steps" may change when resuming)`,
    );
  }
  for (const [name, variable] of model.variables) {
    const t = c.weights.get(name);
    if (!t) throw new Error(`${path}: checkpoint has no weight "${name}"`);
    variable.assign(t);
    t.dispose();
  }
  optimizer.step = c.optimizerStep;
  for (const [name, t] of c.m) optimizer.m.set(name, t);
  for (const [name, t] of c.v) optimizer.v.set(name, t);
  return c.step;
}

/** Rejects a bad config before any work, naming the field and what to change. */
export function validateTrainConfig(c: TrainConfig): void {
  const positiveInt = [
    'seqLen',
    'batchSize',
    'steps',
    'evalEvery',
    'evalBatches',
    'evalBatchSize',
  ] as const;
  for (const key of positiveInt) {
    if (!Number.isInteger(c[key]) || c[key] <= 0)
      throw new Error(`${key}: got ${c[key]}; expected a positive integer`);
  }
  if (!(c.lr > 0)) throw new Error(`lr: got ${c.lr}; expected a positive learning rate`);
  if (!Number.isInteger(c.warmup) || c.warmup < 0)
    throw new Error(`warmup: got ${c.warmup}; expected a non-negative integer`);
  if (!(c.clip > 0))
    throw new Error(`clip: got ${c.clip}; expected a positive gradient-norm limit`);
  if (!Array.isArray(c.evalLengths) || c.evalLengths.some((m) => !Number.isInteger(m) || m < 1)) {
    throw new Error(
      `evalLengths: got ${JSON.stringify(c.evalLengths)}; expected multiples of seqLen such as [1, 4, 8]`,
    );
  }
  // Tasks check their own length constraints (e.g. MQAR needs an even length ≥ 4·pairs): try
  // each training and evaluation length once now rather than fail mid-run.
  if (c.task.name !== 'byte-lm') {
    const task = createTasksSync(c.task);
    for (const m of [1, ...c.evalLengths]) task.sample(1, c.seqLen * m, 0);
  }
}

/** Rebuilds the model a checkpoint was trained with and loads its weights (for eval and sampling). */
export async function loadTrainedModel(
  path: string,
  createMixer: MixerFactory,
): Promise<{ model: Decoder; config: TrainConfig; step: number }> {
  const { readFile } = await import('node:fs/promises');
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(path));
  } catch {
    throw new Error(
      `checkpoint: cannot read ${path}; pass the ckpt.bin written by "ovq-train run"`,
    );
  }
  const c = decodeCheckpoint(bytes, path);
  const config = c.config as TrainConfig;
  validateTrainConfig(config);
  const model = new Decoder(
    { ...config.model, ...taskShape(config.task), seed: config.seed },
    createMixer,
  );
  model.build(Math.min(config.seqLen, 16));
  for (const [name, variable] of model.variables) {
    const t = c.weights.get(name);
    if (!t) throw new Error(`${path}: checkpoint has no weight "${name}"`);
    variable.assign(t);
  }
  for (const t of [...c.weights.values(), ...c.m.values(), ...c.v.values()]) t.dispose();
  return { model, config, step: c.step };
}
