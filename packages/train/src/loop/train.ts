// The training loop: AdamW with warm-up + cosine, global-norm clipping, periodic evaluation at
// the training length and longer ones, atomic checksummed checkpoints, JSONL metrics (each step
// once, however often a run resumes), resume that continues bit-identically (batches are a pure
// function of the seed and the step), steps with a non-finite gradient skipped rather than
// applied, and a clean stop (checkpoint included) when the caller's AbortSignal fires.
import * as tf from '@tensorflow/tfjs-core';
import {
  decodeCheckpoint,
  encodeCheckpoint,
  readCheckpointFile,
  removeStaleTemporaries,
  writeFileAtomic,
} from '../checkpoint/checkpoint.js';
import {
  type CodebookLayerHealth,
  Decoder,
  type LayerHealth,
  type MixerFactory,
  type ModelConfig,
} from '../model/decoder.js';
import { AdamW, clipByGlobalNorm, learningRate } from '../optim/adamw.js';
import { maskedMse, tokenAccuracy } from '../tasks/metrics.js';
import { itemSeed } from '../tasks/random.js';
import { type Batch, IGNORE, type Task } from '../tasks/types.js';
import { batchInputs, modelLoss, trainingLoss } from './loss.js';
import { createTasks, type TaskSpec, taskShape } from './task-spec.js';
import { validateTrainConfig } from './validate.js';

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
  /**
   * Token tasks, when asked for (`EvalOptions.lossByPosition`): mean cross-entropy at each
   * position over the batches (NaN where nothing was scored).
   */
  lossByPosition?: number[];
  /** Dictionary health of each OVQ layer on the first evaluation batch. */
  health?: LayerHealth[];
  /** Codebook usage of each Transformer-VQ layer (its EMA cluster sizes). */
  codebooks?: CodebookLayerHealth[];
};

export type TrainEvent =
  | {
      type: 'step';
      step: number;
      steps: number;
      loss: number;
      lr: number;
      gradNorm: number;
      /** True when the gradient norm or loss was not finite and the update was skipped. */
      skipped: boolean;
      /** Skipped steps so far in this run (resumed runs count from the resume). */
      skippedSteps: number;
      tokensPerSecond: number;
      elapsed: number;
    }
  | { type: 'eval'; step: number; results: EvalResult[] }
  | { type: 'checkpoint'; path: string; step: number }
  | { type: 'interrupted'; step: number };

export type TrainOptions = {
  createMixer: MixerFactory;
  checkpointPath?: string;
  resume?: boolean;
  /** JSONL log; emptied when a run starts, cut back to the checkpoint's step when it resumes. */
  metricsPath?: string;
  onEvent?: (event: TrainEvent) => void;
  /**
   * Called once the run is accepted (config valid, checkpoint restored when resuming) and before
   * anything is written: the place to write a run's own files.
   */
  onStart?: (info: { step: number }) => void | Promise<void>;
  /** When it fires, the step in flight finishes, a checkpoint is written and train returns. */
  signal?: AbortSignal;
  /** Checkpoint every K steps (default: config.evalEvery); the last step is always saved. */
  checkpointEvery?: number;
  /** Stop with an error after this many skipped (non-finite) steps in a row. Default 10. */
  maxNonFiniteSteps?: number;
};

export type TrainResult = {
  model: Decoder;
  evals: EvalResult[];
  finalLoss: number;
  /** The step reached: config.steps, or fewer when the signal stopped the run. */
  steps: number;
  /** True when options.signal stopped the run early. */
  interrupted: boolean;
  /** Steps whose update was skipped because the gradient norm or loss was not finite. */
  skippedSteps: number;
};

export const DEFAULT_MAX_NON_FINITE_STEPS = 10;

const EVAL_SEED = 0x0e7a1;

/** Batch `i` of an evaluation: the same sequences for every model (and `ovq-train` command). */
export function evaluationBatch(task: Task, batchSize: number, seqLen: number, i: number): Batch {
  return task.sample(batchSize, seqLen, itemSeed(EVAL_SEED, i));
}

export type EvalOptions = {
  /** Also report the loss at each position (token tasks; the output head runs at every position). */
  lossByPosition?: boolean;
};

/**
 * Cross-entropy at every position [B·T] (0 where the target is IGNORE) and the argmax prediction
 * [B·T], from one full forward pass: the per-position loss needs the head everywhere, which is
 * what language modelling (every position scored) runs anyway.
 */
function tokenLosses(model: Decoder, batch: Batch & { kind: 'tokens' }): [tf.Tensor, tf.Tensor] {
  return tf.tidy(() => {
    const logits = tf.reshape(model.forward(batchInputs(batch)), [-1, batch.vocabSize]);
    const safeTargets = Int32Array.from(batch.targets, (t) => (t === IGNORE ? 0 : t));
    const picked = tf.sum(
      tf.mul(
        tf.logSoftmax(logits),
        tf.cast(tf.oneHot(tf.tensor1d(safeTargets, 'int32'), batch.vocabSize), 'float32'),
      ),
      -1,
    );
    return [tf.neg(picked), tf.argMax(logits, -1)];
  });
}

/** Evaluates on fixed held-out batches at `seqLen` (reads are awaited, so any backend works). */
export async function evaluate(
  model: Decoder,
  task: Task,
  seqLen: number,
  batches: number,
  batchSize: number,
  step: number,
  options: EvalOptions = {},
): Promise<EvalResult> {
  let loss = 0;
  let metric = 0;
  let positions: Float64Array | undefined;
  // Per position: scored count and summed loss (float64 host sums).
  let lossPositions: Float64Array | undefined;
  let health: LayerHealth[] | undefined;
  const codebooks = model.kinds.includes('vq') ? await model.codebookHealth() : undefined;
  for (let i = 0; i < batches; i++) {
    const batch = evaluationBatch(task, batchSize, seqLen, i);
    if (i === 0 && model.kinds.includes('ovq') && model.canStream()) {
      const inputs = batchInputs(batch);
      health = await model.dictionaryHealth(inputs);
      inputs.dispose();
    }
    let l: number;
    let predictions: ArrayLike<number>;
    if (options.lossByPosition && batch.kind === 'tokens') {
      const [lossTensor, predictionTensor] = tokenLosses(model, batch);
      const [tokenLoss, argmax] = await Promise.all([lossTensor.data(), predictionTensor.data()]);
      tf.dispose([lossTensor, predictionTensor]);
      predictions = argmax;
      lossPositions = lossPositions ?? new Float64Array(2 * seqLen);
      let sum = 0;
      let scored = 0;
      batch.targets.forEach((target, p) => {
        if (target === IGNORE) return;
        const t = p % seqLen;
        lossPositions![2 * t] += 1;
        lossPositions![2 * t + 1] += tokenLoss[p];
        sum += tokenLoss[p];
        scored++;
      });
      // The batch loss is the mean over its scored positions, as batchLoss computes it.
      l = sum / Math.max(1, scored);
    } else {
      const { loss: lossTensor, predictions: predictionTensor } = modelLoss(model, batch, true);
      if (!predictionTensor) throw new Error('modelLoss returned no predictions');
      const [lossValues, values] = await Promise.all([lossTensor.data(), predictionTensor.data()]);
      tf.dispose([lossTensor, predictionTensor]);
      l = lossValues[0];
      predictions = values;
    }
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
    ...(lossPositions
      ? {
          lossByPosition: Array.from({ length: seqLen }, (_, t) =>
            lossPositions![2 * t] > 0
              ? lossPositions![2 * t + 1] / lossPositions![2 * t]
              : Number.NaN,
          ),
        }
      : {}),
    health,
    ...(codebooks ? { codebooks } : {}),
  };
}

export async function train(config: TrainConfig, options: TrainOptions): Promise<TrainResult> {
  validateTrainConfig(config);
  const checkpointEvery = options.checkpointEvery ?? config.evalEvery;
  const maxNonFinite = options.maxNonFiniteSteps ?? DEFAULT_MAX_NON_FINITE_STEPS;
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 1)
    throw new Error(`checkpointEvery: got ${checkpointEvery}; expected a positive integer`);
  if (!Number.isInteger(maxNonFinite) || maxNonFinite < 1)
    throw new Error(`maxNonFiniteSteps: got ${maxNonFinite}; expected a positive integer`);
  const tasks = await createTasks(config.task);
  const model = new Decoder(
    { ...config.model, ...taskShape(config.task), seed: config.seed },
    options.createMixer,
  );
  model.build(Math.min(config.seqLen, 16));
  const optimizer = new AdamW({ weightDecay: config.weightDecay });
  let start = 0;
  if (options.resume) {
    try {
      if (!options.checkpointPath) throw new Error('resume: needs checkpointPath');
      start = await restore(options.checkpointPath, model, optimizer, config);
    } catch (e) {
      // A refused checkpoint must not leave this model's variables behind.
      optimizer.dispose();
      model.dispose();
      throw e;
    }
  }
  // The run is accepted: from here on files may be written.
  await options.onStart?.({ step: start });
  const { appendFile, mkdir } = await import('node:fs/promises');
  const { dirname } = await import('node:path');
  if (options.checkpointPath) {
    await mkdir(dirname(options.checkpointPath), { recursive: true });
    await removeStaleTemporaries(options.checkpointPath);
  }
  if (options.metricsPath) {
    await mkdir(dirname(options.metricsPath), { recursive: true });
    await truncateMetrics(options.metricsPath, start);
  }
  const log = async (record: object) => {
    if (options.metricsPath) await appendFile(options.metricsPath, `${JSON.stringify(record)}\n`);
  };
  const evals: EvalResult[] = [];
  const names = new Map([...model.variables].map(([name, v]) => [v.name, name]));
  const varList = [...model.variables.values()];
  const began = performance.now();
  let finalLoss = Number.NaN;
  let skippedSteps = 0;
  let skippedInARow = 0;
  let reached = start;
  let interrupted = false;
  for (let step = start; step < config.steps; step++) {
    const t0 = performance.now();
    const batch = tasks.train.sample(config.batchSize, config.seqLen, itemSeed(config.seed, step));
    const { value, grads } = tf.variableGrads(() => trainingLoss(model, batch), varList);
    const named = new Map(Object.entries(grads).map(([k, g]) => [names.get(k) ?? k, g]));
    const gradNorm = await clipByGlobalNorm(named, config.clip);
    const loss = (await value.data())[0];
    value.dispose();
    const lr = learningRate(step, config.lr, config.warmup, config.steps);
    // A non-finite norm or loss means some gradient is NaN/Inf: applying it (even partly) would
    // poison the weights and the AdamW moments, so the whole update is skipped.
    const skipped = !Number.isFinite(gradNorm) || !Number.isFinite(loss);
    if (skipped) {
      skippedSteps += 1;
      skippedInARow += 1;
    } else {
      skippedInARow = 0;
      optimizer.apply(model.variables, named, lr);
      finalLoss = loss;
    }
    // Non-gradient updates (Transformer-VQ's EMA codebook) follow the step: dropped when skipped.
    model.endTrainingStep(!skipped);
    for (const g of named.values()) g.dispose();
    const seconds = (performance.now() - t0) / 1000;
    const event = {
      type: 'step' as const,
      step: step + 1,
      steps: config.steps,
      loss,
      lr,
      gradNorm,
      skipped,
      skippedSteps,
      tokensPerSecond: (config.batchSize * config.seqLen) / seconds,
      elapsed: (performance.now() - began) / 1000,
    };
    options.onEvent?.(event);
    await log(event);
    reached = step + 1;
    if (skippedInARow >= maxNonFinite) {
      optimizer.dispose();
      model.dispose();
      throw new Error(
        `training stopped at step ${step + 1}: ${skippedInARow} steps in a row had a non-finite gradient norm or loss (last: norm ${gradNorm}, loss ${loss}); their updates were skipped and the last checkpoint is untouched. Lower lr (${config.lr}) or clip (${config.clip}).`,
      );
    }
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
      options.onEvent?.({ type: 'eval', step: step + 1, results });
      await log({
        type: 'eval',
        step: step + 1,
        results: results.map(({ byPosition: _, ...r }) => r),
      });
    }
    interrupted = options.signal?.aborted === true && !last;
    if (options.checkpointPath && ((step + 1) % checkpointEvery === 0 || last || interrupted)) {
      await saveCheckpoint(options.checkpointPath, model, optimizer, config, step + 1);
      options.onEvent?.({ type: 'checkpoint', path: options.checkpointPath, step: step + 1 });
    }
    if (interrupted) {
      options.onEvent?.({ type: 'interrupted', step: step + 1 });
      await log({ type: 'interrupted', step: step + 1 });
      break;
    }
  }
  optimizer.dispose();
  return { model, evals, finalLoss, steps: reached, interrupted, skippedSteps };
}

/** Step of a metrics record (steps, evaluations and interruptions all carry one). */
function recordStep(line: string): number | undefined {
  try {
    const r = JSON.parse(line);
    if (Number.isInteger(r.step)) return r.step;
    // Evaluations written before records carried a top-level step.
    if (Number.isInteger(r.results?.[0]?.step)) return r.results[0].step;
  } catch {
    // A line cut short by a kill: dropped.
  }
  return undefined;
}

/**
 * Keeps the records of steps ≤ `step` (none for a fresh run), so steps redone after a resume are
 * logged once. Rewritten atomically: a kill here leaves the old log.
 */
async function truncateMetrics(path: string, step: number): Promise<void> {
  const { readFile } = await import('node:fs/promises');
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch {
    // No log yet.
  }
  const kept =
    step === 0
      ? []
      : text.split('\n').filter((l) => {
          const s = l.trim() === '' ? undefined : recordStep(l);
          return s !== undefined && s <= step;
        });
  const next = kept.map((l) => `${l}\n`).join('');
  if (next !== text) await writeFileAtomic(path, new TextEncoder().encode(next));
}

/** What a checkpoint holds of a model: its trainable variables and its non-trainable buffers. */
function checkpointWeights(model: Decoder): Map<string, tf.Variable> {
  return new Map([...model.variables, ...model.buffers]);
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
    weights: checkpointWeights(model),
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
  const c = decodeCheckpoint(await readCheckpointFile(path), path);
  const saved = c.config as TrainConfig;
  const differing = [...new Set([...Object.keys(saved ?? {}), ...Object.keys(config)])].filter(
    (k) =>
      k !== 'steps' &&
      JSON.stringify((saved as Record<string, unknown>)?.[k]) !==
        JSON.stringify((config as Record<string, unknown>)[k]),
  );
  if (differing.length > 0) {
    for (const t of [...c.weights.values(), ...c.m.values(), ...c.v.values()]) t.dispose();
    throw new Error(
      `${path}: checkpoint config differs from this run's in ${differing.join(', ')} (only "steps" may change when resuming)`,
    );
  }
  if (c.step > config.steps) {
    for (const t of [...c.weights.values(), ...c.m.values(), ...c.v.values()]) t.dispose();
    throw new Error(
      `${path}: checkpoint is at step ${c.step}, past this run's steps = ${config.steps}`,
    );
  }
  for (const [name, variable] of checkpointWeights(model)) {
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

/** Rebuilds the model a checkpoint was trained with and loads its weights (for eval and sampling). */
export async function loadTrainedModel(
  path: string,
  createMixer: MixerFactory,
): Promise<{ model: Decoder; config: TrainConfig; step: number }> {
  const c = decodeCheckpoint(await readCheckpointFile(path), path);
  const config = c.config as TrainConfig;
  validateTrainConfig(config);
  const model = new Decoder(
    { ...config.model, ...taskShape(config.task), seed: config.seed },
    createMixer,
  );
  model.build(Math.min(config.seqLen, 16));
  for (const [name, variable] of checkpointWeights(model)) {
    const t = c.weights.get(name);
    if (!t) throw new Error(`${path}: checkpoint has no weight "${name}"`);
    variable.assign(t);
  }
  for (const t of [...c.weights.values(), ...c.m.values(), ...c.v.values()]) t.dispose();
  return { model, config, step: c.step };
}
