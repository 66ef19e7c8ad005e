// Training-config validation: unknown keys (with a did-you-mean), types and ranges, checked
// before any work so a typo never silently trains the defaults. Errors name the config path, the
// value and what was expected.
import { resolveOvqConfig } from '@ovq/core';
import type { MixerOptions } from '../model/decoder.js';
import { createTasksSync, TASK_NAMES, type TaskSpec } from './task-spec.js';
import type { TrainConfig } from './train.js';

/** A bad training config; `argument` is the config path (e.g. "model.dModel"). */
export class TrainConfigError extends Error {
  readonly argument: string;
  /** The known config path a misspelt key most likely meant, when one is close. */
  readonly suggestion?: string;
  constructor(argument: string, message: string, suggestion?: string) {
    super(`${argument}: ${message}`);
    this.name = 'TrainConfigError';
    this.argument = argument;
    this.suggestion = suggestion;
  }
}

const TOP_KEYS = [
  'task',
  'model',
  'seqLen',
  'batchSize',
  'steps',
  'lr',
  'warmup',
  'weightDecay',
  'clip',
  'evalEvery',
  'evalBatches',
  'evalBatchSize',
  'evalLengths',
  'seed',
] as const;
const MODEL_KEYS = [
  'dModel',
  'heads',
  'layers',
  'mixers',
  'mlpHidden',
  'mixerOptions',
  'freezeEmbedding',
] as const;
const MIXER_OPTION_KEYS = [
  'window',
  'ropeBase',
  'ovqCapacity',
  'ovqChunkSize',
  'ovqGrowth',
  'ovqSpawn',
  'ovqUpdate',
  'ovqSpawnDistance',
  'vqCodes',
  'vqDeadCodeThreshold',
  'vqBeta',
  'vqCacheKeyGradient',
  'kvmBudget',
  'decayBiasInit',
  'gdnWriteBiasInit',
  'gdnOutputNorm',
  'ovqOutputNorm',
  'kvmOutputNorm',
] as const;
/** MixerOptions fields that are OVQ algorithm choices, checked by @ovq/core (not numbers). */
const OVQ_AXES = {
  ovqGrowth: 'growth',
  ovqSpawn: 'spawn',
  ovqUpdate: 'update',
  ovqSpawnDistance: 'spawnDistance',
} as const;
// The key lists must name every field of their types: a field added to TrainConfig, the model
// config or MixerOptions without being listed here fails to compile instead of being refused.
type Missing<T, K extends readonly unknown[]> = Exclude<keyof T, K[number]>;
const everyKeyListed: [
  Missing<TrainConfig, typeof TOP_KEYS>,
  Missing<TrainConfig['model'], typeof MODEL_KEYS>,
  Missing<MixerOptions, typeof MIXER_OPTION_KEYS>,
] extends [never, never, never]
  ? true
  : never = true;
void everyKeyListed;
// Mirrors TaskSpec in task-spec.ts (a new task name fails to compile until listed).
const TASK_KEYS: Record<TaskSpec['name'], readonly string[]> = {
  mqar: ['name', 'vocabSize', 'numPairs', 'powerA', 'randomNonQueries'],
  'basic-recall': ['name', 'vocabSize', 'numPairs', 'queries'],
  'positional-recall': ['name', 'vocabSize', 'runLength'],
  'linear-regression': ['name', 'functions', 'inputDim', 'outputDim', 'noise'],
  'byte-lm': ['name', 'corpus', 'validationFraction'],
  'mqar-mixture': ['name', 'vocabSize', 'slices', 'powerA'],
  niah: ['name', 'needleLength', 'filler', 'depth', 'needles'],
};

/** Every known path, for suggestions across levels (a top-level "window" means the mixer's). */
const ALL_PATHS = [
  ...TOP_KEYS,
  ...MODEL_KEYS.map((k) => `model.${k}`),
  ...MIXER_OPTION_KEYS.map((k) => `model.mixerOptions.${k}`),
  ...[...new Set(Object.values(TASK_KEYS).flat())].map((k) => `task.${k}`),
];

/** Case- and separator-insensitive form, so "d-model", "dmodel" and "d_model" all match "dModel". */
const normalise = (s: string) => s.toLowerCase().replace(/[-_\s]/g, '');

/** Optimal-string-alignment distance: edits plus adjacent transpositions ("stpes" → "steps" = 1). */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The candidate closest to `word` (case and separators ignored), or undefined when none is close. */
export function didYouMean(word: string, candidates: readonly string[]): string | undefined {
  return closest(
    word,
    candidates.map((c) => ({ path: c, bias: 0 })),
  );
}

function closest(word: string, candidates: { path: string; bias: number }[]): string | undefined {
  const k = normalise(word);
  const limit = k.length >= 5 ? 2 : 1;
  let best: { path: string; d: number } | undefined;
  for (const { path, bias } of candidates) {
    const last = path.slice(path.lastIndexOf('.') + 1);
    const d = distance(k, normalise(last)) + bias;
    if (d <= limit + bias && (!best || d < best.d)) best = { path, d };
  }
  return best?.path;
}

/**
 * The known config path closest to `key` (met under `prefix`): same level first, then every
 * level with a small bias so a same-level match wins a tie (a top-level "windw" means
 * model.mixerOptions.window).
 */
export function suggestConfigPath(
  key: string,
  prefix: string,
  sameLevel: readonly string[],
): string | undefined {
  return closest(key, [
    ...sameLevel.map((name) => ({ path: `${prefix}${name}`, bias: 0 })),
    ...ALL_PATHS.map((path) => ({ path, bias: 0.5 })),
  ]);
}

const describe = (value: unknown) => {
  try {
    return typeof value === 'string' ? JSON.stringify(value) : String(JSON.stringify(value));
  } catch {
    return String(value);
  }
};

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function rejectUnknownKeys(
  value: Record<string, unknown>,
  prefix: string,
  allowed: readonly string[],
): void {
  for (const key of Object.keys(value)) {
    if (allowed.includes(key)) continue;
    const suggestion = suggestConfigPath(key, prefix, allowed);
    throw new TrainConfigError(
      `${prefix}${key}`,
      suggestion
        ? `unknown key; did you mean "${suggestion}"?`
        : `unknown key; expected one of ${allowed.join(', ')}`,
      suggestion,
    );
  }
}

function requireObject(value: unknown, path: string): Record<string, unknown> {
  if (!isPlainObject(value))
    throw new TrainConfigError(path, `got ${describe(value)}; expected an object`);
  return value;
}

/**
 * Checks a (possibly partial) training config for unknown keys and wrong shapes (objects where
 * objects belong). Missing keys are fine: defaults fill them. Use it on a config file before
 * merging it with defaults; validateTrainConfig runs it too.
 */
export function checkTrainConfigKeys(value: unknown): void {
  const config = requireObject(value, 'config');
  rejectUnknownKeys(config, '', TOP_KEYS);
  if (config.model !== undefined) {
    const model = requireObject(config.model, 'model');
    rejectUnknownKeys(model, 'model.', MODEL_KEYS);
    if (model.mixerOptions !== undefined)
      rejectUnknownKeys(
        requireObject(model.mixerOptions, 'model.mixerOptions'),
        'model.mixerOptions.',
        MIXER_OPTION_KEYS,
      );
  }
  if (config.task !== undefined) {
    const task = requireObject(config.task, 'task');
    const name = task.name;
    if (typeof name !== 'string' || !(TASK_NAMES as readonly string[]).includes(name))
      throw new TrainConfigError(
        'task.name',
        `unknown task ${describe(name)}; choose from ${TASK_NAMES.join(', ')}`,
      );
    rejectUnknownKeys(task, 'task.', TASK_KEYS[name as TaskSpec['name']]);
  }
}

function requireInteger(path: string, value: unknown, min: 0 | 1): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
    throw new TrainConfigError(
      path,
      `got ${describe(value)}; expected a ${min === 1 ? 'positive' : 'non-negative'} integer`,
    );
}

function requirePositive(path: string, value: unknown, what: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0)
    throw new TrainConfigError(path, `got ${describe(value)}; expected ${what}`);
}

/** Rejects a bad config before any work, naming the field and what to change. */
export function validateTrainConfig(c: TrainConfig): void {
  checkTrainConfigKeys(c);
  requireObject(c.task, 'task');
  requireObject(c.model, 'model');
  for (const key of [
    'seqLen',
    'batchSize',
    'steps',
    'evalEvery',
    'evalBatches',
    'evalBatchSize',
  ] as const)
    requireInteger(key, c[key], 1);
  requirePositive('lr', c.lr, 'a positive learning rate');
  requireInteger('warmup', c.warmup, 0);
  requirePositive('clip', c.clip, 'a positive gradient-norm limit');
  if (typeof c.weightDecay !== 'number' || !Number.isFinite(c.weightDecay) || c.weightDecay < 0)
    throw new TrainConfigError(
      'weightDecay',
      `got ${describe(c.weightDecay)}; expected a finite number ≥ 0`,
    );
  requireInteger('seed', c.seed, 0);
  if (!Array.isArray(c.evalLengths) || c.evalLengths.some((m) => !Number.isInteger(m) || m < 1)) {
    throw new TrainConfigError(
      'evalLengths',
      `got ${describe(c.evalLengths)}; expected multiples of seqLen such as [1, 4, 8]`,
    );
  }
  const m = c.model;
  if (typeof m.mixers !== 'string')
    throw new TrainConfigError(
      'model.mixers',
      `got ${describe(m.mixers)}; expected a pattern such as "swa,ovq"`,
    );
  for (const key of ['dModel', 'heads', 'layers'] as const)
    requireInteger(`model.${key}`, m[key], 1);
  if (m.mlpHidden !== undefined) requireInteger('model.mlpHidden', m.mlpHidden, 1);
  if (m.freezeEmbedding !== undefined && typeof m.freezeEmbedding !== 'boolean')
    throw new TrainConfigError(
      'model.freezeEmbedding',
      `got ${describe(m.freezeEmbedding)}; expected true or false`,
    );
  if (m.dModel % m.heads !== 0)
    throw new TrainConfigError(
      'model.dModel',
      `${m.dModel} is not divisible by model.heads = ${m.heads}`,
    );
  for (const [key, value] of Object.entries(m.mixerOptions ?? {})) {
    if (value === undefined) continue;
    if (key in OVQ_AXES) {
      const axis = OVQ_AXES[key as keyof typeof OVQ_AXES];
      try {
        resolveOvqConfig({ chunkSize: 1, capacity: 1, beta: 1, [axis]: value });
      } catch (e) {
        throw new TrainConfigError(`model.mixerOptions.${key}`, (e as Error).message);
      }
    } else if (key === 'decayBiasInit' || key === 'gdnWriteBiasInit') {
      if (typeof value !== 'number' || !Number.isFinite(value))
        throw new TrainConfigError(
          `model.mixerOptions.${key}`,
          `got ${describe(value)}; expected a finite number (a gate's initial bias, e.g. -3)`,
        );
    } else if (
      key === 'gdnOutputNorm' ||
      key === 'ovqOutputNorm' ||
      key === 'kvmOutputNorm' ||
      key === 'vqCacheKeyGradient'
    ) {
      if (typeof value !== 'boolean')
        throw new TrainConfigError(
          `model.mixerOptions.${key}`,
          `got ${describe(value)}; expected true or false`,
        );
    } else if (key === 'vqDeadCodeThreshold') {
      if (typeof value !== 'number' || !(value >= 0 && Number.isFinite(value)))
        throw new TrainConfigError(
          `model.mixerOptions.${key}`,
          `got ${describe(value)}; expected a finite number ≥ 0 (keys per step; 0 turns restarts off)`,
        );
    } else if (key === 'ropeBase' || key === 'vqBeta')
      requirePositive(`model.mixerOptions.${key}`, value, 'a number > 0');
    else requireInteger(`model.mixerOptions.${key}`, value, 1);
  }
  // Tasks check their own length constraints (e.g. MQAR needs an even length ≥ 4·pairs): try
  // each training and evaluation length once now rather than fail mid-run.
  if (
    c.task.name === 'niah' &&
    c.task.filler !== undefined &&
    !['synthetic', 'corpus'].includes(c.task.filler)
  ) {
    throw new TrainConfigError(
      'task.filler',
      `got ${describe(c.task.filler)}; expected "synthetic" or "corpus"`,
    );
  }
  if (c.task.name !== 'byte-lm') {
    // Corpus filler only changes the filler bytes, not the length rules: check with synthetic.
    const spec = c.task.name === 'niah' ? { ...c.task, filler: 'synthetic' as const } : c.task;
    const task = createTasksSync(spec);
    for (const k of [1, ...c.evalLengths]) task.sample(1, c.seqLen * k, 0);
  } else if (c.task.corpus !== undefined && typeof c.task.corpus !== 'string') {
    throw new TrainConfigError(
      'task.corpus',
      `got ${describe(c.task.corpus)}; expected a path to a UTF-8 file or folder`,
    );
  }
}
