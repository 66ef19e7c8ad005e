// Runs a regime plan cell by cell: trains, scores on the validation split (lr search) or the test
// split (every length, pair count and depth), and merges the rows into the results file after
// each cell, so a killed sweep resumes where it stopped (a cell in flight resumes from its own
// checkpoint) and several processes can split the plan by group.

import * as tf from '@tensorflow/tfjs-core';
import type { TaskSpec } from '../loop/task-spec.js';
import { type EvalResult, evaluate, type TrainConfig, train } from '../loop/train.js';
import { Decoder, type MixerFactory, type MixerOptions } from '../model/decoder.js';
import { mqarTask } from '../tasks/mqar.js';
import { niahTask } from '../tasks/niah.js';
import { byteLmTask, loadBrownCorpus, loadTextDocuments, splitDocuments } from '../tasks/text.js';
import type { Task } from '../tasks/types.js';
import {
  isTestTimeCell,
  type RegimeCell,
  type RegimeConfig,
  type RegimeTask,
  rowMixers,
} from './plan.js';
import {
  binPositions,
  type CellKey,
  cellDone,
  type ResultRow,
  type ResultsFile,
} from './results.js';

/** Position bins of a byte-LM loss row (the file keeps the curve's shape, not every position). */
export const POSITION_BINS = 32;

/** Seeds of the validation and test splits never meet each other's (or training's) batches. */
const SPLIT_SALT = { validation: 0x51a7e, test: 0x7e57 } as const;

function onSplit(task: Task, split: keyof typeof SPLIT_SALT): Task {
  return {
    ...task,
    sample: (batch, seqLen, seed) =>
      task.sample(batch, seqLen, (Math.imul(seed + 1, 0x9e3779b1) ^ SPLIT_SALT[split]) >>> 0),
  };
}

/** The training task spec of a regime task. */
export function trainingSpec(task: RegimeTask): TaskSpec {
  switch (task.name) {
    case 'mqar':
      return {
        name: 'mqar-mixture',
        vocabSize: task.vocabSize,
        slices: task.trainSlices,
        ...(task.powerA === undefined ? {} : { powerA: task.powerA }),
      } as TaskSpec;
    case 'niah':
      return {
        name: 'niah',
        needleLength: task.needleLength ?? 4,
        filler: task.filler ?? 'synthetic',
      } as TaskSpec;
    case 'byte-lm':
      return { name: 'byte-lm', ...(task.corpus ? { corpus: task.corpus } : {}) };
  }
}

/**
 * One evaluation of a cell: the task to sample, its length, and the metric name it reports;
 * `loss` probes report the mean loss and the loss by position (binned into the row).
 */
type Probe = { task: Task; seqLen: number; metric: string; loss?: boolean };

async function heldOutDocuments(corpus: string | undefined) {
  const docs = corpus ? await loadTextDocuments(corpus) : await loadBrownCorpus();
  // Training uses `train` (as the loop does); the held-out documents split again, val | test.
  const held = splitDocuments(docs, 0.1).validation;
  const { train: validation, validation: test } = splitDocuments(held, 0.5);
  return { validation, test };
}

/** What a cell is scored on: validation at the training length, or the whole test grid. */
export async function cellProbes(config: RegimeConfig, cell: RegimeCell): Promise<Probe[]> {
  const split = cell.phase === 'lr-search' ? 'validation' : 'test';
  const multiples =
    cell.phase === 'lr-search'
      ? [1]
      : ('evalMultiples' in cell.task && cell.task.evalMultiples) || config.evalMultiples;
  const T = config.trainLen;
  const task = cell.task;
  const probes: Probe[] = [];
  if (task.name === 'mqar') {
    const cells =
      cell.phase === 'lr-search'
        ? task.testCells.filter((c) => c.lengthMultiple === 1)
        : task.testCells;
    for (const c of cells.length > 0 ? cells : task.testCells.slice(0, 1)) {
      const t = mqarTask({ vocabSize: task.vocabSize, numPairs: c.numPairs, powerA: task.powerA });
      probes.push({
        task: onSplit(t, split),
        seqLen: T * c.lengthMultiple,
        metric: `accuracy@pairs=${c.numPairs}`,
      });
    }
  } else if (task.name === 'niah') {
    const filler =
      task.filler === 'corpus' ? (await heldOutDocuments(undefined))[split] : 'synthetic';
    for (const m of multiples) {
      for (const depth of task.depths) {
        const t = niahTask({ needleLength: task.needleLength ?? 4, depth, filler });
        probes.push({ task: onSplit(t, split), seqLen: T * m, metric: `accuracy@depth=${depth}` });
      }
    }
  } else {
    const docs = (await heldOutDocuments(task.corpus))[split];
    const t = byteLmTask(docs, `byte-lm-${split}`);
    for (const m of multiples)
      probes.push({ task: onSplit(t, split), seqLen: T * m, metric: 'loss', loss: true });
  }
  return probes;
}

/**
 * The learning rate the lr search picked for a group (best validation score at trainLen); the
 * only rate when `lrs` has one.
 */
export function pickedLr(results: ResultsFile, config: RegimeConfig, cell: RegimeCell): number {
  // One candidate rate: nothing to pick, so test cells need not wait for the validation run.
  if (config.lrs.length === 1) return config.lrs[0];
  // Test-time cells score the default pattern's model: its search decides.
  const mixers = isTestTimeCell(cell) ? cell.mixers : rowMixers(cell);
  const rows = results.rows.filter(
    (r) =>
      r.task === `${cell.task.name}:validation` &&
      r.mixers === mixers &&
      r.budget === cell.budget &&
      r.trainLen === config.trainLen,
  );
  const missing = config.lrs.filter((lr) => !rows.some((r) => r.lr === lr));
  if (missing.length > 0)
    throw new Error(`${cell.group}: lr search has no result for lr ${missing.join(', ')} yet`);
  const lowerIsBetter = cell.task.name === 'byte-lm';
  let best = { lr: config.lrs[0], score: lowerIsBetter ? Infinity : -Infinity };
  for (const lr of config.lrs) {
    const scores = rows.filter((r) => r.lr === lr).map((r) => r.value);
    const score = scores.reduce((a, b) => a + b, 0) / scores.length;
    if (lowerIsBetter ? score < best.score : score > best.score) best = { lr, score };
  }
  return best.lr;
}

export function cellKey(config: RegimeConfig, cell: RegimeCell, lr: number): CellKey {
  return {
    task: cell.phase === 'lr-search' ? `${cell.task.name}:validation` : cell.task.name,
    mixers: rowMixers(cell),
    budget: cell.budget,
    seed: cell.seed,
    trainLen: config.trainLen,
    lr,
  };
}

export function cellTrainConfig(config: RegimeConfig, cell: RegimeCell, lr: number): TrainConfig {
  const { window: _w, chunkSize: _c, ...model } = config.model;
  return {
    task: trainingSpec(cell.task),
    model: { ...model, mixers: cell.mixers, mixerOptions: cell.mixerOptions },
    seqLen: config.trainLen,
    batchSize: config.batchSize,
    steps: config.steps,
    lr,
    warmup: config.warmup ?? Math.min(100, Math.floor(config.steps / 10)),
    weightDecay: config.weightDecay ?? 0.1,
    clip: config.clip ?? 1,
    evalEvery: config.steps,
    evalBatches: 1,
    evalBatchSize: Math.min(config.evalBatchSize, 4),
    evalLengths: [1],
    seed: cell.seed,
  };
}

export type RunCellOptions = {
  createMixer: MixerFactory;
  /** Checkpoint of the cell in flight (resumed when it exists). */
  checkpointPath?: string;
  resume?: boolean;
  /** Checkpoint every K steps (default 50), so a killed cell loses at most K steps. */
  checkpointEvery?: number;
  /** Reproduces this cell (goes into each row's `command`). */
  command: string;
  onMessage?: (text: string) => void;
};

/** Trains one cell and scores it; returns its rows (not yet merged). */
export async function runCell(
  config: RegimeConfig,
  cell: RegimeCell,
  lr: number,
  options: RunCellOptions,
): Promise<ResultRow[]> {
  const trainConfig = cellTrainConfig(config, cell, lr);
  const result = await train(trainConfig, {
    createMixer: options.createMixer,
    ...(options.checkpointPath ? { checkpointPath: options.checkpointPath } : {}),
    resume: options.resume ?? false,
    checkpointEvery: options.checkpointEvery ?? 50,
  });
  const trained: Decoder = result.model;
  let model = trained;
  try {
    if (cell.evalCapacity !== undefined)
      model = withOvqCapacity(trained, cell.evalCapacity, options.createMixer);
    if (cell.evalBetaScale !== undefined)
      model = withOvqBetaScale(trained, cell.evalBetaScale, options.createMixer);
    if (cell.evalSpawnDistance !== undefined)
      model = withOvqSpawnDistance(trained, cell.evalSpawnDistance, options.createMixer);
    const key = cellKey(config, cell, lr);
    const sequences =
      cell.phase === 'lr-search' ? config.validationSequences : config.testSequences;
    const batches = Math.ceil(sequences / config.evalBatchSize);
    const rows: ResultRow[] = [];
    for (const probe of await cellProbes(config, cell)) {
      const started = performance.now();
      const r: EvalResult = await evaluate(
        model,
        probe.task,
        probe.seqLen,
        batches,
        config.evalBatchSize,
        config.steps,
        { lossByPosition: probe.loss === true },
      );
      // Every mixer layer's state (SWA windows included): the memory a sequence holds.
      const stateNumbers = model.stateSize(probe.seqLen).reduce((a, b) => a + b, 0);
      const bins = r.lossByPosition
        ? binPositions(r.lossByPosition, Math.min(POSITION_BINS, probe.seqLen))
        : undefined;
      rows.push({
        ...key,
        evalLen: probe.seqLen,
        stateNumbers,
        metric: probe.metric,
        value: probe.loss ? r.loss : r.metric,
        command: options.command,
        // A bin with no finite loss (a diverged model) would make the file invalid: left out.
        ...(bins?.every(Number.isFinite) ? { byPosition: bins } : {}),
      });
      options.onMessage?.(
        `${cell.id} lr=${lr} T=${probe.seqLen} ${probe.metric}=${(probe.loss ? r.loss : r.metric).toFixed(4)} (${((performance.now() - started) / 1000).toFixed(0)} s)`,
      );
    }
    rows.push(...lossRatioRows(rows, config.trainLen));
    return rows;
  } finally {
    if (model !== trained) model.dispose();
    trained.dispose();
  }
}

/**
 * A copy of `model` (same weights) whose OVQ layers hold `factor`× the trained capacity N: the
 * test-time memory ablation (ALGORITHM.md §4; capacity is no weight, so the weights carry over).
 */
export function withOvqCapacity(
  model: Decoder,
  factor: number,
  createMixer: MixerFactory,
): Decoder {
  const options = model.config.mixerOptions ?? {};
  if (options.ovqCapacity === undefined)
    throw new Error('evalCapacity: the model has no ovqCapacity to scale (an unsized OVQ layer)');
  const capacity = Math.max(1, Math.round(options.ovqCapacity * factor));
  return copyModel(model, { ...options, ovqCapacity: capacity }, createMixer, 'evalCapacity');
}

/**
 * A copy of `model` (same weights) whose OVQ layers use novelty spawn with `distance`
 * (@ovq/core `spawnDistance`): a pending token farther than that from every row seeds a row of
 * its own while the capacity allows. A test-time variant; `Infinity` turns it off.
 */
export function withOvqSpawnDistance(
  model: Decoder,
  distance: number,
  createMixer: MixerFactory,
): Decoder {
  if (!(distance > 0))
    throw new Error(`evalSpawnDistance: distance is ${distance}; expected a number > 0`);
  if (!model.kinds.includes('ovq'))
    throw new Error(`evalSpawnDistance: the model has no OVQ layer (mixers ${model.kinds})`);
  const options = { ...(model.config.mixerOptions ?? {}), ovqSpawnDistance: distance };
  return copyModel(model, options, createMixer, 'evalSpawnDistance');
}

/**
 * A copy of `model` (same weights) whose OVQ layers keep `reserve` rows for novelty spawn: the
 * saturating schedule grows toward N − reserve rows (@ovq/core `growth: {kind: 'saturating',
 * rows}`), so several late novel spans can each get a row. Needs novelty spawn (trained with it,
 * or `withOvqSpawnDistance` first): without it the reserved rows would stay empty.
 */
export function withOvqReserve(
  model: Decoder,
  reserve: number,
  createMixer: MixerFactory,
): Decoder {
  const options = model.config.mixerOptions ?? {};
  const capacity = options.ovqCapacity;
  if (capacity === undefined || !model.kinds.includes('ovq'))
    throw new Error(
      'evalReserve: the model has no sized OVQ layer (ovqCapacity) to reserve rows in',
    );
  if (!(Number.isInteger(reserve) && reserve >= 1 && reserve < capacity))
    throw new Error(
      `evalReserve: reserve is ${reserve}; expected an integer in [1, ${capacity - 1}] (the OVQ capacity is ${capacity})`,
    );
  if (options.ovqSpawnDistance === undefined)
    throw new Error(
      'evalReserve: the model has no novelty spawn (ovqSpawnDistance), which alone fills reserved rows; add it first',
    );
  const growth = options.ovqGrowth;
  const saturating =
    growth === undefined ||
    growth === 'saturating' ||
    (typeof growth === 'object' && growth.kind === 'saturating');
  if (!saturating)
    throw new Error(
      `evalReserve: the model grows by ${JSON.stringify(growth)}; a reserve applies to saturating growth`,
    );
  return copyModel(
    model,
    { ...options, ovqGrowth: { kind: 'saturating', rows: capacity - reserve } },
    createMixer,
    'evalReserve',
  );
}

/**
 * A copy of `model` whose OVQ layers read with `factor`× their trained β (every head's log β
 * shifted by ln factor): the test-time sharpness ablation. β > 1× weighs the similarity term
 * more against the ln-count prior, which grows with the length while the similarity does not.
 */
export function withOvqBetaScale(
  model: Decoder,
  factor: number,
  createMixer: MixerFactory,
): Decoder {
  if (!(factor > 0 && Number.isFinite(factor)))
    throw new Error(`evalBetaScale: factor is ${factor}; expected a finite number > 0`);
  const scaled = copyModel(model, model.config.mixerOptions ?? {}, createMixer, 'evalBetaScale');
  const logBetas = [...scaled.variables].filter(([name]) => /\.ovq\.log_beta$/.test(name));
  if (logBetas.length === 0) {
    scaled.dispose();
    throw new Error('evalBetaScale: the model has no OVQ layer with a log_beta weight to scale');
  }
  for (const [, v] of logBetas) tf.tidy(() => v.assign(tf.add(v, Math.log(factor))));
  return scaled;
}

/** A new model built with `mixerOptions`, holding `model`'s weights and mixer buffers. */
function copyModel(
  model: Decoder,
  mixerOptions: MixerOptions,
  createMixer: MixerFactory,
  what: string,
): Decoder {
  const copy = new Decoder({ ...model.config, mixerOptions }, createMixer);
  copy.build(16);
  // Trainable weights and non-trainable mixer state (e.g. a VQ codebook's EMA statistics) alike.
  for (const [name, v] of [...model.variables, ...model.buffers]) {
    const target = copy.variables.get(name) ?? copy.buffers.get(name);
    if (!target) {
      copy.dispose();
      throw new Error(`${what}: the rebuilt model has no variable ${name}`);
    }
    target.assign(v);
  }
  return copy;
}

/**
 * Byte-LM's extrapolation number: for every evaluation length but the training one, a
 * `loss-ratio` row, the loss there divided by the loss at the training length (same model,
 * same held-out documents). 1.02 means 2% worse than at 1×.
 */
export function lossRatioRows(rows: ResultRow[], trainLen: number): ResultRow[] {
  const base = rows.find((r) => r.metric === 'loss' && r.evalLen === trainLen);
  if (!base || !(base.value > 0)) return [];
  return rows
    .filter((r) => r.metric === 'loss' && r.evalLen !== trainLen)
    .map(({ byPosition: _, ...r }) => ({
      ...r,
      metric: 'loss-ratio',
      value: r.value / base.value,
    }));
}

/** The cells of `cells` not yet in `results` (with the lr each runs at, when decidable). */
export function pendingCells(
  config: RegimeConfig,
  cells: RegimeCell[],
  results: ResultsFile,
): RegimeCell[] {
  return cells.filter((cell) => {
    if (cell.phase === 'lr-search') return !cellDone(results, cellKey(config, cell, cell.lr!));
    try {
      return !cellDone(results, cellKey(config, cell, pickedLr(results, config, cell)));
    } catch {
      return true;
    }
  });
}

export type RunRegimeOptions = {
  createMixer: MixerFactory;
  /** Reads the results file as it is now (another shard may have written to it). */
  load: () => Promise<ResultsFile>;
  /** Merges rows into the results file and persists it (atomically). */
  save: (rows: ResultRow[]) => Promise<void>;
  /** Where the cell in flight keeps its checkpoint; resumed when it exists. */
  checkpointFor?: (cell: RegimeCell) => { path: string; exists: boolean };
  /** Reproduces a cell: goes into each row's `command`. */
  commandFor: (cell: RegimeCell) => string;
  onMessage?: (text: string) => void;
  /** Called after each cell's rows are saved (e.g. to commit them). */
  onCellDone?: (cell: RegimeCell, rows: ResultRow[]) => Promise<void> | void;
  /** Stop before the next cell when it fires. */
  signal?: AbortSignal;
};

/**
 * The checkpoint a cell trains into. Training is deterministic, so the first seed's test cell at
 * the picked rate is the lr-search run at that rate: it reuses that finished checkpoint (scored on
 * the test split) instead of training the same model again.
 */
function checkpointOf(
  config: RegimeConfig,
  cell: RegimeCell,
  lr: number,
  checkpointFor: RunRegimeOptions['checkpointFor'],
): { path: string; exists: boolean } | undefined {
  if (!checkpointFor) return undefined;
  if (isTestTimeCell(cell)) {
    // The default pattern's model of this seed, when its own test cell has trained it.
    const {
      variant: _v,
      evalCapacity: _f,
      evalBetaScale: _b,
      evalSpawnDistance: _d,
      ...plain
    } = cell;
    const trained = checkpointFor({ ...plain, id: `${cell.group}/seed=${cell.seed}` });
    if (trained.exists) return trained;
  }
  if (cell.phase === 'test' && cell.seed === config.seeds[0]) {
    const searched = checkpointFor({
      ...cell,
      id: `${cell.group}/lr=${lr}`,
      phase: 'lr-search',
      lr,
    });
    if (searched.exists) return searched;
  }
  return checkpointFor(cell);
}

/** Runs every pending cell of `cells` in order; returns how many it ran. */
export async function runRegime(
  config: RegimeConfig,
  cells: RegimeCell[],
  options: RunRegimeOptions,
): Promise<number> {
  let ran = 0;
  for (const [i, cell] of cells.entries()) {
    const results = await options.load();
    // Checked after this await, not before it: a stop request (SIGTERM) is handled only when the
    // event loop is free, which after a long synchronous cell is during this load.
    if (options.signal?.aborted) break;
    const lr = cell.phase === 'lr-search' ? cell.lr! : pickedLr(results, config, cell);
    if (cellDone(results, cellKey(config, cell, lr))) continue;
    options.onMessage?.(
      `[${i + 1}/${cells.length}] ${cell.id}${cell.phase === 'test' ? ` (lr ${lr})` : ''}`,
    );
    const checkpoint = checkpointOf(config, cell, lr, options.checkpointFor);
    const rows = await runCell(config, cell, lr, {
      createMixer: options.createMixer,
      ...(checkpoint ? { checkpointPath: checkpoint.path, resume: checkpoint.exists } : {}),
      command: options.commandFor(cell),
      ...(options.onMessage ? { onMessage: options.onMessage } : {}),
    });
    await options.save(rows);
    await options.onCellDone?.(cell, rows);
    ran++;
  }
  return ran;
}
