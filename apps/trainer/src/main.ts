// ovq-train's commands, testable without a subprocess: `main(argv)` resolves to an exit code and
// never throws; errors are printed as one "ovq-train: …" line on stderr.
import { existsSync, readFileSync } from 'node:fs';
import { type ResultsFile, resultTables, validateResults } from '@ovq/train';
import * as tf from '@tensorflow/tfjs';
import { BACKEND_HELP } from './backend.js';
import { runEval, runNeedleTrace, runSample, runTraining } from './commands.js';
import { buildRunConfig, helpText, RUN_FLAGS } from './config.js';
import { parseFlags, UsageError } from './flags.js';
import { Progress } from './progress.js';
import { isRegimeFile, runRegimeSweep } from './regime.js';
import { acceptRun } from './run-folder.js';
import { runSweep } from './sweep.js';

/** Exit codes: see the README. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

const USAGE = {
  main: 'usage: ovq-train <run|eval|needle-trace|sample|sweep|table> [options]   (ovq-train <command> --help for its options)',
  run: 'usage: ovq-train run [--task mqar] [--mixers swa,ovq] [--len 64] … | --config run.json',
  eval: 'usage: ovq-train eval --checkpoint runs/latest/ckpt.bin [--lengths 1,4,8] [--batches 4] [--depths 0,0.5,1] [--needles 4] [--cut-echo [--decoy]] [--eval-capacity 4] [--eval-spawn-distance 1 [--eval-reserve 4]]',
  'needle-trace':
    'usage: ovq-train needle-trace --checkpoint runs/niah/ckpt.bin [--lengths 1,4,16] [--depths 0,0.5,1] [--needles 4] [--batches 2] [--eval-capacity 4] [--eval-spawn-distance 1] [--cut-echo [--decoy]] [--out trace.json]',
  sample:
    'usage: ovq-train sample --checkpoint runs/latest/ckpt.bin [--prompt "The "] [--tokens 200]',
  table: 'usage: ovq-train table --results results/regime.json [--task niah]',
  sweep:
    'usage: ovq-train sweep --config experiments/mqar-sweep.json [--out runs/sweep]\n       ovq-train sweep --config experiments/regime.json [--results results/regime.json] [--shard i/n] [--only GROUP|CELL] [--commit] [--dry-run]',
};

const SWEEP_FLAGS = {
  config: { type: 'string', description: 'sweep file: {base, tasks?, mixers[], lrs[], backend?}' },
  out: { type: 'string', description: 'folder for sweep.json and sweep.md (default runs/sweep)' },
  results: {
    type: 'string',
    description:
      'regime files: the ovq-results/1 file rows are merged into (default results/regime.json)',
  },
  shard: { type: 'string', description: 'regime files: run shard i of n (whole groups), e.g. 0/2' },
  only: { type: 'string', description: 'regime files: one group (task/mixers/budget) or cell id' },
  commit: {
    type: 'boolean',
    description: 'regime files: git-commit the results file after each cell',
  },
  'dry-run': {
    type: 'boolean',
    description: 'regime files: print the plan and its budgets, run nothing',
  },
  runs: {
    type: 'string',
    description: "regime files: folder for the cells' checkpoints (default runs/regime)",
  },
  help: { type: 'boolean', description: 'show this help' },
} as const;

/** Test-time variants of a trained OVQ model, shared by eval and needle-trace. */
const TEST_TIME_FLAGS = {
  'eval-capacity': {
    type: 'string',
    description: "use the model with its OVQ capacity N × this factor (the regime's evalCapacity)",
  },
  'eval-beta-scale': {
    type: 'string',
    description: "use the model with every OVQ head's β × this factor (evalBetaScale)",
  },
  'eval-spawn-distance': {
    type: 'string',
    description:
      'use the model with novelty spawn (@ovq/core spawnDistance): a token farther than this squared distance from every row seeds a row while the capacity allows',
  },
  'eval-reserve': {
    type: 'string',
    description:
      'keep this many OVQ rows for novelty spawn: saturating growth toward capacity − this (@ovq/core growth.rows); needs novelty spawn, trained or --eval-spawn-distance',
  },
} as const;

/** NIAH-MK at test time, shared by eval and needle-trace. */
const NEEDLES_FLAG = {
  needles: {
    type: 'string',
    description:
      'NIAH models only: hide this many needles under distinct keys and ask for the one at the depth (NIAH-MK; default: as trained)',
  },
} as const;

const EVAL_FLAGS = {
  checkpoint: { type: 'string', description: 'ckpt.bin written by "ovq-train run"' },
  lengths: {
    type: 'string',
    description: 'evaluation lengths as multiples of the training length (default 1,4,8)',
  },
  batches: { type: 'string', description: 'evaluation batches per length (default 4)' },
  depths: {
    type: 'string',
    description:
      'NIAH models only: score the needle at these depths (fractions of the filler, e.g. 0,0.5,0.9,1), each at every length',
  },
  ...NEEDLES_FLAG,
  'cut-echo': {
    type: 'boolean',
    description:
      'NIAH models only: score with the echo cut (see needle-trace --cut-echo); any long-range mixer above the sliding window',
  },
  decoy: {
    type: 'boolean',
    description: "with --cut-echo, cut a decoy's echo instead (the control)",
  },
  ...TEST_TIME_FLAGS,
  backend: { type: 'string', description: BACKEND_HELP },
  help: { type: 'boolean', description: 'show this help' },
} as const;

const NEEDLE_TRACE_FLAGS = {
  checkpoint: { type: 'string', description: 'ckpt.bin of a niah run with an OVQ layer' },
  lengths: {
    type: 'string',
    description: 'lengths as multiples of the training length (default 1,4,16)',
  },
  depths: {
    type: 'string',
    description: 'needle depths, fractions of the filler (default 0,0.5,1)',
  },
  ...NEEDLES_FLAG,
  batches: {
    type: 'string',
    description: "evaluation batches per length and depth, the evaluation's own (default 2)",
  },
  ...TEST_TIME_FLAGS,
  'cut-echo': {
    type: 'boolean',
    description:
      'score and trace with the echo cut: the haystack tokens after the needle lose what the sliding-window block below OVQ copied of it',
  },
  decoy: {
    type: 'boolean',
    description:
      "with --cut-echo, the control: cut the echo of a needle-long span of filler between the needle and the question instead of the needle's",
  },
  out: { type: 'string', description: 'also write every per-sequence trace to this JSON file' },
  backend: { type: 'string', description: BACKEND_HELP },
  help: { type: 'boolean', description: 'show this help' },
} as const;

const SAMPLE_FLAGS = {
  checkpoint: { type: 'string', description: 'ckpt.bin of a byte-lm run' },
  prompt: { type: 'string', description: 'text to continue (default "The ")' },
  tokens: { type: 'string', description: 'bytes to generate (default 200)' },
  temperature: {
    type: 'string',
    description: 'sampling temperature ≥ 0; 0 = greedy (default 0.8)',
  },
  seed: { type: 'string', description: 'sampling seed (default 0)' },
  backend: { type: 'string', description: BACKEND_HELP },
  help: { type: 'boolean', description: 'show this help' },
} as const;

const TABLE_FLAGS = {
  results: { type: 'string', description: 'an ovq-results/1 file written by "ovq-train sweep"' },
  task: { type: 'string', description: 'only this task (niah, mqar, byte-lm); default every task' },
  help: { type: 'boolean', description: 'show this help' },
} as const;

export async function main(argv: string[]): Promise<number> {
  // TensorFlow.js prints a "Hi, looks like you are running TensorFlow.js in Node.js" banner on
  // the first tensor write unless PROD (or IS_TEST) is set; set it before any backend starts.
  tf.enableProdMode();
  try {
    return await dispatch(argv);
  } catch (e) {
    process.stderr.write(`ovq-train: ${(e as Error).message}\n`);
    return e instanceof UsageError ? EXIT.usage : EXIT.failed;
  }
}

async function dispatch(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const progress = new Progress(process.stdout);
  if (command === undefined || command === '--help' || command === 'help') {
    console.log(USAGE.main);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  if (command === 'run') {
    const values = parseFlags('run', rest, RUN_FLAGS);
    if (values.help) return print(helpText(USAGE.run, RUN_FLAGS));
    // Everything is checked before the first write: a refused run leaves the folder as it was.
    const accepted = await acceptRun(values);
    const { config, backend, out } = buildRunConfig(values, accepted.resumedConfig);
    accepted.checkConfig(config);
    return runTraining(config, backend, out, values, accepted.prepare, progress);
  }
  if (command === 'eval') {
    const values = parseFlags('eval', rest, EVAL_FLAGS);
    if (values.help) return print(helpText(USAGE.eval, EVAL_FLAGS));
    if (!values.checkpoint)
      throw new UsageError('--checkpoint: required; pass the ckpt.bin written by "ovq-train run"');
    await runEval(values.checkpoint, values, progress);
    return EXIT.ok;
  }
  if (command === 'needle-trace') {
    const values = parseFlags('needle-trace', rest, NEEDLE_TRACE_FLAGS);
    if (values.help) return print(helpText(USAGE['needle-trace'], NEEDLE_TRACE_FLAGS));
    if (!values.checkpoint)
      throw new UsageError('--checkpoint: required; pass the ckpt.bin of a niah run');
    await runNeedleTrace(values.checkpoint, values, progress);
    return EXIT.ok;
  }
  if (command === 'sample') {
    const values = parseFlags('sample', rest, SAMPLE_FLAGS);
    if (values.help) return print(helpText(USAGE.sample, SAMPLE_FLAGS));
    if (!values.checkpoint)
      throw new UsageError('--checkpoint: required; pass the ckpt.bin of a byte-lm run');
    await runSample(values.checkpoint, values, progress);
    return EXIT.ok;
  }
  if (command === 'sweep') {
    const values = parseFlags('sweep', rest, SWEEP_FLAGS);
    if (values.help) return print(helpText(USAGE.sweep, SWEEP_FLAGS));
    if (!values.config)
      throw new UsageError(
        '--config: required; pass a sweep file such as experiments/mqar-sweep.json',
      );
    const raw = readJsonFile(values.config);
    if (isRegimeFile(raw)) {
      await runRegimeSweep(
        values.config,
        raw,
        {
          results: values.results ?? 'results/regime.json',
          shard: values.shard,
          only: values.only,
          commit: values.commit === true,
          dryRun: values['dry-run'] === true,
          runs: values.runs ?? 'runs/regime',
        },
        (line) => process.stderr.write(`${line}\n`),
      );
      return EXIT.ok;
    }
    for (const flag of ['results', 'shard', 'only', 'commit', 'dry-run', 'runs'] as const)
      if (values[flag] !== undefined)
        throw new UsageError(`--${flag}: only for regime files (schema "ovq-regime/1")`);
    await runSweep(values.config, values.out ?? 'runs/sweep', progress);
    return EXIT.ok;
  }
  if (command === 'table') {
    const values = parseFlags('table', rest, TABLE_FLAGS);
    if (values.help) return print(helpText(USAGE.table, TABLE_FLAGS));
    if (!values.results)
      throw new UsageError(
        '--results: required; pass an ovq-results/1 file such as results/regime.json',
      );
    return print(resultsTable(values.results, values.task));
  }
  throw new UsageError(`unknown command "${command}"; ${USAGE.main}`);
}

/** A JSON file or a UsageError naming the flag that passed it. */
function readJsonFile(file: string, flag = '--config'): unknown {
  if (!existsSync(file)) throw new UsageError(`${flag}: ${file} does not exist`);
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`${flag}: ${file} is not valid JSON (${(e as Error).message})`);
  }
}

/** The Markdown tables of a results file (`ovq-train table`). */
function resultsTable(file: string, task: string | undefined): string {
  let results: ResultsFile;
  try {
    results = validateResults(readJsonFile(file, '--results'), file);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(`--results: ${(e as Error).message}`);
  }
  try {
    return resultTables(results, task === undefined ? {} : { task });
  } catch (e) {
    throw new UsageError(`--task: ${(e as Error).message}`);
  }
}

function print(text: string): number {
  process.stdout.write(text);
  return EXIT.ok;
}
