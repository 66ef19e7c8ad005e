// Command-line flags and JSON config files → a validated TrainConfig. Everything that can be
// wrong is checked here, before any training starts and before any file is written, with a
// message that names the flag (or config key) and says what to change.
import { existsSync, readFileSync } from 'node:fs';
import {
  checkTrainConfigKeys,
  DEFAULT_TRAIN_CONFIG,
  mixerSchedule,
  TASK_NAMES,
  type TaskSpec,
  type TrainConfig,
  TrainConfigError,
  validateTrainConfig,
} from '@ovq/train';
import { BACKEND_HELP, DEFAULT_BACKEND } from './backend.js';
import {
  choiceFlag,
  integerFlag,
  integerListFlag,
  numberFlag,
  type ParsedFlags,
  UsageError,
} from './flags.js';

export const RUN_FLAGS = {
  config: {
    type: 'string',
    description: 'JSON file with a full or partial TrainConfig (flags override it)',
  },
  task: { type: 'string', description: `task: ${TASK_NAMES.join(' | ')} (default mqar)` },
  vocab: { type: 'string', description: 'vocabulary size for token tasks (default 64)' },
  pairs: { type: 'string', description: 'key-value pairs for mqar / basic-recall (default 8)' },
  functions: { type: 'string', description: 'functions for linear-regression (default 16)' },
  corpus: {
    type: 'string',
    description: 'UTF-8 file or folder for byte-lm (default: the Brown corpus)',
  },
  mixers: {
    type: 'string',
    description: 'mixer pattern repeated over layers, e.g. swa,ovq (default swa,ovq)',
  },
  layers: { type: 'string', description: 'number of blocks (default 2)' },
  'd-model': { type: 'string', description: 'model width (default 64)' },
  heads: { type: 'string', description: 'attention heads (default 2)' },
  len: { type: 'string', description: 'training sequence length (default 64)' },
  batch: { type: 'string', description: 'batch size (default 16)' },
  steps: { type: 'string', description: 'training steps (default 300)' },
  lr: { type: 'string', description: 'peak learning rate (default 3e-3)' },
  warmup: { type: 'string', description: 'warm-up steps (default 30)' },
  'eval-every': {
    type: 'string',
    description: 'evaluate and checkpoint every K steps (default 100)',
  },
  'eval-lengths': {
    type: 'string',
    description: 'evaluation lengths as multiples of --len (default 1)',
  },
  window: { type: 'string', description: 'SWA window (default 16)' },
  capacity: { type: 'string', description: 'OVQ dictionary capacity (default 64)' },
  chunk: { type: 'string', description: 'OVQ chunk size (default 16)' },
  seed: { type: 'string', description: 'seed for weights and data (default 0)' },
  backend: {
    type: 'string',
    description: `TensorFlow.js backend: ${BACKEND_HELP}`,
  },
  out: {
    type: 'string',
    description: 'output folder for ckpt.bin, metrics.jsonl, config.json (default runs/latest)',
  },
  'checkpoint-every': {
    type: 'string',
    description: 'also checkpoint every K steps (default: --eval-every)',
  },
  'max-nonfinite': {
    type: 'string',
    description: 'stop after K steps in a row with a non-finite gradient (default 10)',
  },
  resume: {
    type: 'boolean',
    description: 'continue the run in --out from its ckpt.bin (its config is the default)',
  },
  force: { type: 'boolean', description: 'replace the run already in --out' },
  help: { type: 'boolean', description: 'show this help' },
} as const;

export type RunFlags = ParsedFlags<typeof RUN_FLAGS>;

/** TrainConfig paths and the flags that set them (for "did you mean" and error hints). */
const FLAG_OF_PATH: Record<string, string> = {
  'task.name': 'task',
  'task.vocabSize': 'vocab',
  'task.numPairs': 'pairs',
  'task.functions': 'functions',
  'task.corpus': 'corpus',
  'model.mixers': 'mixers',
  'model.layers': 'layers',
  'model.dModel': 'd-model',
  'model.heads': 'heads',
  'model.mixerOptions.window': 'window',
  'model.mixerOptions.ovqCapacity': 'capacity',
  'model.mixerOptions.ovqChunkSize': 'chunk',
  seqLen: 'len',
  batchSize: 'batch',
  steps: 'steps',
  lr: 'lr',
  warmup: 'warmup',
  evalEvery: 'eval-every',
  evalLengths: 'eval-lengths',
  seed: 'seed',
};

/** A config error as a UsageError naming the file and, where one exists, the flag. */
function configError(e: unknown, file: string | undefined): UsageError {
  const where = file ? `${file}: ` : '';
  if (e instanceof TrainConfigError) {
    const path = e.suggestion ?? e.argument;
    const flag = FLAG_OF_PATH[path];
    const hint = flag ? ` (flag --${flag})` : '';
    return new UsageError(`${where}${e.message}${hint}`);
  }
  return new UsageError(`${where}${(e as Error).message}`);
}

/** Reads and checks a JSON config file: unknown keys are refused with a did-you-mean. */
export function readConfigFile(file: string, flag = 'config'): Record<string, unknown> {
  if (!existsSync(file)) throw new UsageError(`--${flag}: ${file} does not exist`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--${flag}: ${file} is not valid JSON (${(e as Error).message})`);
  }
  try {
    checkTrainConfigKeys(raw);
  } catch (e) {
    throw configError(e, `--${flag} ${file}`);
  }
  return raw as Record<string, unknown>;
}

const DEFAULT_MODEL = { dModel: 64, heads: 2, layers: 2, mixers: 'swa,ovq' };
const DEFAULT_MIXER_OPTIONS = { window: 16, ovqCapacity: 64, ovqChunkSize: 16 };
export const BACKENDS = ['cpu', 'wasm', 'webgpu'] as const;

function taskSpec(flags: RunFlags, base: TaskSpec | undefined): TaskSpec {
  const name = choiceFlag('task', flags.task, TASK_NAMES) ?? base?.name ?? 'mqar';
  const b = (base?.name === name ? base : {}) as Record<string, unknown>;
  const vocab = integerFlag('vocab', flags.vocab, 1) ?? (b.vocabSize as number) ?? 64;
  const pairs = integerFlag('pairs', flags.pairs, 1) ?? (b.numPairs as number) ?? 8;
  switch (name) {
    case 'mqar':
      return { ...b, name, vocabSize: vocab, numPairs: pairs };
    case 'basic-recall':
      return { ...b, name, vocabSize: vocab, numPairs: pairs };
    case 'positional-recall':
      return { ...b, name, vocabSize: vocab };
    case 'linear-regression':
      return {
        ...b,
        name,
        functions: integerFlag('functions', flags.functions, 1) ?? (b.functions as number) ?? 16,
      };
    case 'mqar-mixture':
      // The slices come from a config file (no flag describes them).
      return { ...b, name, vocabSize: vocab } as TaskSpec;
    case 'niah':
      return { ...b, name } as TaskSpec;
    default: {
      const corpus = flags.corpus ?? (b.corpus as string | undefined);
      if (corpus !== undefined && !existsSync(corpus))
        throw new UsageError(`--corpus: ${corpus} does not exist; give a UTF-8 file or folder`);
      return { ...b, name: 'byte-lm', ...(corpus ? { corpus } : {}) };
    }
  }
}

/**
 * Builds and validates the config of `ovq-train run`: defaults, then `base` (a resumed
 * checkpoint's config) or the --config file, then the flags. Everything wrong is a UsageError.
 */
export function buildRunConfig(
  flags: RunFlags,
  resumed?: TrainConfig,
): {
  config: TrainConfig;
  backend: string;
  out: string;
} {
  const file = flags.config;
  const base = (
    file !== undefined ? readConfigFile(file) : (resumed ?? {})
  ) as Partial<TrainConfig>;
  const model = { ...DEFAULT_MODEL, ...base.model };
  const mixerOptions = { ...DEFAULT_MIXER_OPTIONS, ...model.mixerOptions };
  const d = { ...DEFAULT_TRAIN_CONFIG, ...base };
  const evalLengths = integerListFlag('eval-lengths', flags['eval-lengths']);
  const config: TrainConfig = {
    ...d,
    task: taskSpec(flags, base.task),
    model: {
      ...model,
      mixers: flags.mixers ?? model.mixers,
      layers: integerFlag('layers', flags.layers, 1) ?? model.layers,
      dModel: integerFlag('d-model', flags['d-model'], 1) ?? model.dModel,
      heads: integerFlag('heads', flags.heads, 1) ?? model.heads,
      mixerOptions: {
        ...mixerOptions,
        window: integerFlag('window', flags.window, 1) ?? mixerOptions.window,
        ovqCapacity: integerFlag('capacity', flags.capacity, 1) ?? mixerOptions.ovqCapacity,
        ovqChunkSize: integerFlag('chunk', flags.chunk, 1) ?? mixerOptions.ovqChunkSize,
      },
    },
    seqLen: integerFlag('len', flags.len, 1) ?? d.seqLen,
    batchSize: integerFlag('batch', flags.batch, 1) ?? d.batchSize,
    steps: integerFlag('steps', flags.steps, 1) ?? d.steps,
    lr: numberFlag('lr', flags.lr, 0) ?? d.lr,
    warmup: integerFlag('warmup', flags.warmup, 0) ?? d.warmup,
    evalEvery: integerFlag('eval-every', flags['eval-every'], 1) ?? d.evalEvery,
    seed: integerFlag('seed', flags.seed, 0) ?? d.seed,
    evalLengths: evalLengths ?? d.evalLengths,
  };
  try {
    mixerSchedule(config.model.mixers, config.model.layers);
  } catch (e) {
    throw new UsageError(`--mixers: ${(e as Error).message}`);
  }
  if (
    typeof config.model.dModel === 'number' &&
    typeof config.model.heads === 'number' &&
    config.model.dModel % config.model.heads !== 0
  ) {
    throw new UsageError(
      `--d-model: ${config.model.dModel} is not divisible by --heads ${config.model.heads}`,
    );
  }
  try {
    validateTrainConfig(config);
  } catch (e) {
    throw configError(e, file !== undefined ? `--config ${file}` : undefined);
  }
  const backend = choiceFlag('backend', flags.backend, BACKENDS) ?? DEFAULT_BACKEND;
  return { config, backend, out: flags.out ?? 'runs/latest' };
}

/** `--help` text from a flag table. */
export function helpText(
  usage: string,
  flags: Record<string, { type: string; description: string }>,
): string {
  const rows = Object.entries(flags).map(
    ([name, f]) => `  --${name}${f.type === 'string' ? ' VALUE' : ''}`.padEnd(24) + f.description,
  );
  return `${usage}\n\nOptions:\n${rows.join('\n')}\n`;
}
