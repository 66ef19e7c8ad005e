// Command-line flags and JSON config files → a validated TrainConfig. Everything that can be
// wrong is checked here, before any training starts, with a message that says what to change.
import { existsSync, readFileSync } from 'node:fs';
import {
  DEFAULT_TRAIN_CONFIG,
  mixerSchedule,
  TASK_NAMES,
  type TaskSpec,
  type TrainConfig,
  validateTrainConfig,
} from '@ovq/train';

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
    description: 'TensorFlow.js backend: cpu | wasm | webgpu (default cpu)',
  },
  out: {
    type: 'string',
    description: 'output folder for ckpt.bin, metrics.jsonl, config.json (default runs/latest)',
  },
  resume: { type: 'boolean', description: 'continue from OUT/ckpt.bin' },
  help: { type: 'boolean', description: 'show this help' },
} as const;

export type RunFlags = {
  [K in keyof typeof RUN_FLAGS]?: (typeof RUN_FLAGS)[K]['type'] extends 'boolean'
    ? boolean
    : string;
};

function number(flag: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const x = Number(value);
  if (!Number.isFinite(x)) throw new Error(`--${flag}: got "${value}"; expected a number`);
  return x;
}

function taskSpec(flags: RunFlags, base: TaskSpec | undefined): TaskSpec {
  const name = flags.task ?? base?.name ?? 'mqar';
  if (!(TASK_NAMES as readonly string[]).includes(name)) {
    throw new Error(`--task: unknown task "${name}"; choose from ${TASK_NAMES.join(', ')}`);
  }
  const b = (base?.name === name ? base : {}) as Record<string, unknown>;
  const vocab = number('vocab', flags.vocab, (b.vocabSize as number) ?? 64);
  const pairs = number('pairs', flags.pairs, (b.numPairs as number) ?? 8);
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
        functions: number('functions', flags.functions, (b.functions as number) ?? 16),
      };
    default: {
      const corpus = flags.corpus ?? (b.corpus as string | undefined);
      if (corpus !== undefined && !existsSync(corpus))
        throw new Error(`--corpus: ${corpus} does not exist; give a UTF-8 file or folder`);
      return { ...b, name: 'byte-lm', ...(corpus ? { corpus } : {}) };
    }
  }
}

/** Builds and validates the config of `ovq-train run`. */
export function buildRunConfig(flags: RunFlags): {
  config: TrainConfig;
  backend: string;
  out: string;
} {
  let base: Partial<TrainConfig> = {};
  if (flags.config !== undefined) {
    if (!existsSync(flags.config)) throw new Error(`--config: ${flags.config} does not exist`);
    try {
      base = JSON.parse(readFileSync(flags.config, 'utf8'));
    } catch (e) {
      throw new Error(`--config: ${flags.config} is not valid JSON (${(e as Error).message})`);
    }
  }
  const model = base.model ?? { dModel: 64, heads: 2, layers: 2, mixers: 'swa,ovq' };
  const mixerOptions = { window: 16, ovqCapacity: 64, ovqChunkSize: 16, ...model.mixerOptions };
  const config: TrainConfig = {
    ...DEFAULT_TRAIN_CONFIG,
    ...base,
    task: taskSpec(flags, base.task),
    model: {
      ...model,
      mixers: flags.mixers ?? model.mixers,
      layers: number('layers', flags.layers, model.layers),
      dModel: number('d-model', flags['d-model'], model.dModel),
      heads: number('heads', flags.heads, model.heads),
      mixerOptions: {
        ...mixerOptions,
        window: number('window', flags.window, mixerOptions.window),
        ovqCapacity: number('capacity', flags.capacity, mixerOptions.ovqCapacity),
        ovqChunkSize: number('chunk', flags.chunk, mixerOptions.ovqChunkSize),
      },
    },
  };
  const d = { ...DEFAULT_TRAIN_CONFIG, ...base };
  config.seqLen = number('len', flags.len, d.seqLen);
  config.batchSize = number('batch', flags.batch, d.batchSize);
  config.steps = number('steps', flags.steps, d.steps);
  config.lr = number('lr', flags.lr, d.lr);
  config.warmup = number('warmup', flags.warmup, d.warmup);
  config.evalEvery = number('eval-every', flags['eval-every'], d.evalEvery);
  config.seed = number('seed', flags.seed, d.seed);
  if (flags['eval-lengths'] !== undefined) {
    config.evalLengths = flags['eval-lengths']
      .split(',')
      .map((s) => number('eval-lengths', s, Number.NaN));
  }
  mixerSchedule(config.model.mixers, config.model.layers);
  if (config.model.dModel % config.model.heads !== 0) {
    throw new Error(
      `--d-model: ${config.model.dModel} is not divisible by --heads ${config.model.heads}`,
    );
  }
  validateTrainConfig(config);
  const backend = flags.backend ?? 'cpu';
  if (!['cpu', 'wasm', 'webgpu'].includes(backend))
    throw new Error(`--backend: got "${backend}"; choose cpu, wasm or webgpu`);
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
