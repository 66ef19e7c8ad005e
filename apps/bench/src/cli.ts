#!/usr/bin/env node
// ovq-bench: the benchmark runner and the project's main job (`pnpm start` runs `quick`).
import { compareReports, formatComparison } from './compare.js';
import { formatRecallDemo, runRecallDemo } from './recall-demo.js';
import type { Mode } from './registry/types.js';
import { readReport } from './report/json.js';
import { runSuite, type Suite } from './run.js';
import type { SpeedOptions } from './suites/speed.js';

export const HELP = `ovq-bench — what OVQ-attention costs and what it buys

usage: ovq-bench <command> [flags]

commands
  quick     speed (3 lengths, forward, memory probe) + untrained recall + ablations, < 10 min;
            checks the three headline claims (the main job: \`pnpm start\`)
  speed     every implementation present: correctness check first, then tokens/s, GFLOP/s,
            state size and peak memory, forward and forward+backward, T = 256 … 64k
  recall    trained MQAR / positional recall from @ovq/train (best over a learning-rate sweep);
            without @ovq/train: skipped, plus the untrained synthetic comparison
  ablate    OVQ's axes (spawn, growth, update, read, test-time capacity) on synthetic recall
  lm        loss by position on long documents (needs @ovq/train)
  compare a.json b.json   ratios b/a between two result files
  demo      the original recall demo (OVQ vs softmax on one synthetic sequence)

flags
  --out DIR         results folder (default bench-results/); writes <suite>.json and <suite>.html
  --T LIST          sequence lengths, e.g. 256,1024,4096 (alias --seq-lens)
  --repeats N       timed repeats after warm-up (median, p20/p80)     --warmup N   untimed runs
  --budget S        seconds one (implementation, T, mode) may take; longer ones are skipped
  --dim D           key and value dimension                           --modes fwd,fwd+bwd
  --memory-T LIST   lengths probed for peak memory (child process); --no-memory to skip
  --impl LIST       only implementations whose name contains one of these (e.g. ovq,softmax)
  --seeds LIST      seeds for the recall and ablation suites
  --webgpu / --no-webgpu   open WebGPU adapters (default: on for speed, off for quick)
  --tfjs / --no-tfjs       run the @ovq/tfjs ops on tfjs-cpu/wasm (default: on for speed, off for quick)
  --steps N         training steps per run (recall, lm)   --lrs LIST   learning-rate sweep (recall)
  --mixers LIST     mixers to train (recall, lm), e.g. ovq,linear,gated-deltanet
  --base FILE       after the run, print ratios against an earlier results file
  -h, --help        this text
`;

export class UsageError extends Error {}

const list = (flag: string, v: string | undefined) => {
  const xs = (v ?? '').split(',').filter(Boolean).map(Number);
  if (xs.length === 0 || xs.some((x) => !Number.isFinite(x) || x <= 0)) {
    throw new UsageError(`${flag} got "${v}"; expected comma-separated positive numbers`);
  }
  return xs;
};

export type ParsedArgs =
  | { command: 'help' }
  | { command: 'demo' }
  | { command: 'compare'; a: string; b: string }
  | {
      command: Suite;
      out: string;
      speed: Partial<SpeedOptions>;
      seeds?: number[];
      impl: string[];
      train?: { steps?: number; learningRates?: number[]; mixers?: string[] };
      base?: string;
    };

export function parseArgs(argv: string[]): ParsedArgs {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help')
    return { command: 'help' };
  if (command === 'demo') return { command: 'demo' };
  if (command === 'compare') {
    if (rest.length !== 2)
      throw new UsageError(
        `compare got ${rest.length} files; expected two: ovq-bench compare a.json b.json`,
      );
    return { command, a: rest[0], b: rest[1] };
  }
  if (!['quick', 'speed', 'recall', 'ablate', 'lm'].includes(command)) {
    throw new UsageError(
      `unknown command "${command}"; expected quick, speed, recall, ablate, lm, compare or demo`,
    );
  }
  const parsed = {
    command: command as Suite,
    out: 'bench-results',
    speed: {} as Partial<SpeedOptions>,
    impl: [] as string[],
  } as Extract<ParsedArgs, { out: string }>;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = () => {
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const one = () => list(flag, value())[0];
    switch (flag) {
      case '--out':
        parsed.out = value();
        break;
      case '--T':
      case '--seq-lens':
        parsed.speed.Ts = list(flag, value());
        break;
      case '--repeats':
        parsed.speed.repeats = one();
        break;
      case '--warmup':
        parsed.speed.warmup = Number(value());
        break;
      case '--budget':
        parsed.speed.budgetSeconds = one();
        break;
      case '--dim': {
        const d = one();
        parsed.speed.dims = { keyDim: d, valueDim: d };
        break;
      }
      case '--modes':
        parsed.speed.modes = value()
          .split(',')
          .map((m) => {
            if (m === 'fwd' || m === 'forward') return 'forward' as Mode;
            if (m === 'fwd+bwd' || m === 'forward+backward') return 'forward+backward' as Mode;
            throw new UsageError(`--modes got "${m}"; expected fwd or fwd+bwd`);
          });
        break;
      case '--memory-T':
        parsed.speed.memoryTs = list(flag, value());
        break;
      case '--no-memory':
        parsed.speed.memoryTs = [];
        break;
      case '--impl':
        parsed.impl = value().split(',').filter(Boolean);
        break;
      case '--seeds':
        parsed.seeds = list(flag, value());
        break;
      case '--webgpu':
        parsed.speed.webgpu = true;
        break;
      case '--no-webgpu':
        parsed.speed.webgpu = false;
        break;
      case '--tfjs':
        parsed.speed.tfjs = true;
        break;
      case '--no-tfjs':
        parsed.speed.tfjs = false;
        break;
      case '--steps':
        parsed.train = { ...parsed.train, steps: one() };
        break;
      case '--lrs':
        parsed.train = { ...parsed.train, learningRates: list(flag, value()) };
        break;
      case '--mixers':
        parsed.train = { ...parsed.train, mixers: value().split(',').filter(Boolean) };
        break;
      case '--base':
        parsed.base = value();
        break;
      default:
        throw new UsageError(`unknown flag "${flag}" for ${command}; see ovq-bench --help`);
    }
  }
  return parsed;
}

export async function main(argv: string[]): Promise<number> {
  let args: ParsedArgs;
  try {
    args = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`ovq-bench: ${error.message}`);
    return 2;
  }
  switch (args.command) {
    case 'help':
      console.log(HELP);
      return 0;
    case 'demo':
      console.log(formatRecallDemo(runRecallDemo()));
      return 0;
    case 'compare':
      console.log(
        formatComparison(compareReports(readReport(args.a), readReport(args.b)), args.a, args.b),
      );
      return 0;
    default:
      await runSuite({
        suite: args.command,
        out: args.out,
        speed: args.speed,
        seeds: args.seeds,
        impl: args.impl,
        train: args.train,
        base: args.base,
        command: ['ovq-bench', ...argv],
      });
      return 0;
  }
}

// Run only as the bin, not when a test imports parseArgs.
if (process.argv[1] && /cli\.(js|ts)$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error instanceof Error ? (error.stack ?? error.message) : error);
      process.exit(1);
    },
  );
}
