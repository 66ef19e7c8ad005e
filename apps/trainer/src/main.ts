// ovq-train's commands, testable without a subprocess: `main(argv)` resolves to an exit code.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runEval, runSample, runTraining } from './commands.js';
import { buildRunConfig, helpText, RUN_FLAGS, type RunFlags } from './config.js';
import { Progress } from './progress.js';
import { runSweep } from './sweep.js';

const USAGE = {
  main: 'usage: ovq-train <run|eval|sample|sweep> [options]   (ovq-train <command> --help for its options)',
  run: 'usage: ovq-train run [--task mqar] [--mixers swa,ovq] [--len 64] … | --config run.json',
  eval: 'usage: ovq-train eval --checkpoint runs/latest/ckpt.bin [--lengths 1,4,8] [--batches 4]',
  sample:
    'usage: ovq-train sample --checkpoint runs/latest/ckpt.bin [--prompt "The "] [--tokens 200]',
  sweep: 'usage: ovq-train sweep --config experiments/recall-sweep.json [--out runs/sweep]',
};

const SWEEP_FLAGS = {
  config: { type: 'string', description: 'sweep file: {base, tasks?, mixers[], lrs[], backend?}' },
  out: { type: 'string', description: 'folder for sweep.json and sweep.md (default runs/sweep)' },
  help: { type: 'boolean', description: 'show this help' },
} as const;

const EVAL_FLAGS = {
  checkpoint: { type: 'string', description: 'ckpt.bin written by "ovq-train run"' },
  lengths: {
    type: 'string',
    description: 'evaluation lengths as multiples of the training length (default 1,4,8)',
  },
  batches: { type: 'string', description: 'evaluation batches per length (default 4)' },
  backend: { type: 'string', description: 'cpu | wasm | webgpu (default cpu)' },
  help: { type: 'boolean', description: 'show this help' },
} as const;

const SAMPLE_FLAGS = {
  checkpoint: { type: 'string', description: 'ckpt.bin of a byte-lm run' },
  prompt: { type: 'string', description: 'text to continue (default "The ")' },
  tokens: { type: 'string', description: 'bytes to generate (default 200)' },
  temperature: { type: 'string', description: 'sampling temperature; 0 = greedy (default 0.8)' },
  seed: { type: 'string', description: 'sampling seed (default 0)' },
  backend: { type: 'string', description: 'cpu | wasm | webgpu (default cpu)' },
  help: { type: 'boolean', description: 'show this help' },
} as const;

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const progress = new Progress(process.stdout);
  if (command === undefined || command === '--help' || command === 'help') {
    console.log(USAGE.main);
    return command === undefined ? 1 : 0;
  }
  if (command === 'run') {
    const { values } = parseArgs({ args: rest, options: RUN_FLAGS, strict: true });
    if (values.help) return print(helpText(USAGE.run, RUN_FLAGS));
    const { config, backend, out } = buildRunConfig(values as RunFlags);
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    await runTraining(config, backend, out, Boolean(values.resume), progress);
    return 0;
  }
  if (command === 'eval') {
    const { values } = parseArgs({ args: rest, options: EVAL_FLAGS, strict: true });
    if (values.help) return print(helpText(USAGE.eval, EVAL_FLAGS));
    if (!values.checkpoint)
      throw new Error('--checkpoint: required; pass the ckpt.bin written by "ovq-train run"');
    await runEval(values.checkpoint, values, progress);
    return 0;
  }
  if (command === 'sample') {
    const { values } = parseArgs({ args: rest, options: SAMPLE_FLAGS, strict: true });
    if (values.help) return print(helpText(USAGE.sample, SAMPLE_FLAGS));
    if (!values.checkpoint)
      throw new Error('--checkpoint: required; pass the ckpt.bin of a byte-lm run');
    await runSample(values.checkpoint, values, progress);
    return 0;
  }
  if (command === 'sweep') {
    const { values } = parseArgs({ args: rest, options: SWEEP_FLAGS, strict: true });
    if (values.help) return print(helpText(USAGE.sweep, SWEEP_FLAGS));
    if (!values.config)
      throw new Error(
        '--config: required; pass a sweep file such as experiments/recall-sweep.json',
      );
    await runSweep(values.config, values.out ?? 'runs/sweep', progress);
    return 0;
  }
  throw new Error(`unknown command "${command}"; ${USAGE.main}`);
}

function print(text: string): number {
  process.stdout.write(text);
  return 0;
}
