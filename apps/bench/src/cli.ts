#!/usr/bin/env node
// ovq-bench: the benchmark runner and the project's main job (`pnpm start` runs `quick`).
import { existsSync } from 'node:fs';
import { compareReports, formatComparison } from './compare.js';
import { formatRecallDemo, runRecallDemo } from './recall-demo.js';
import type { Mode } from './registry/types.js';
import { readReport } from './report/json.js';
import { runSuite, type Suite, UsageError } from './run.js';
import type { SpeedOptions } from './suites/speed.js';
import { trainSpeedCli } from './suites/train-speed.js';

export const HELP = `ovq-bench — what OVQ-attention costs and what it buys

usage: ovq-bench <command> [flags]

commands
  quick     about 4 min on this 2-core machine when it is idle, build included (\`pnpm start\`,
            the main job; longer while other work shares the cores): speed at 4 lengths
            (forward, held-memory probe, our softmax and tfjs-wasm dense attention), the
            matched-state recall sweep on two data sets, the ablations on 5 seeds, and
            verdicts on four headline claims
  speed     every implementation present: correctness check first, then tokens/s, GFLOP/s,
            state size and peak memory, forward and forward+backward, T = 256 … 64k
  recall    trained MQAR / positional recall from @ovq/train (best over a learning-rate sweep),
            plus the full matched-state sweep (more sizes, βs, seeds than quick)
  ablate    OVQ's axes (spawn, growth, update, read, test-time capacity) on synthetic recall
  lm        loss by position on long documents (needs @ovq/train)
  compare a.json b.json   ratios b/a between two result files
  demo      the original recall demo (OVQ vs softmax on one synthetic sequence)
  train-speed  trains the analogue model (swa,ovq / softmax / gdn / kvm; 4 layers, d 128, T 1024)
            a few steps on wasm: tokens/s, model FLOP/s, MFU vs an in-process matMul yardstick,
            phases, top ops (flags: --steps N, --quick, --threads N, --mixers "swa,ovq;swa,kvm",
            --layers --d-model --heads --len --batch --window --capacity --chunk --out)

flags
  --out DIR         results folder (default bench-results/); writes <suite>.json and <suite>.html
  --T LIST          sequence lengths, e.g. 256,1024,4096 (alias --seq-lens)
  --repeats N       timed repeats after warm-up (median, p20/p80)     --warmup N   untimed runs
  --budget S        seconds one (implementation, T, mode) may take; longer ones are skipped
  --dim D           key and value dimension                           --modes fwd,fwd+bwd
  --memory-T LIST   lengths probed for peak memory (child process); --no-memory to skip
  --impl LIST       only implementations whose name contains one of these (e.g. ovq,softmax)
  --seeds LIST      seeds of the ablations and the recall validation split (test: each + 100)
  --webgpu / --no-webgpu   open WebGPU adapters (default: on for speed, off for quick)
  --tfjs / --no-tfjs       run the @ovq/tfjs ops on tfjs-cpu/wasm (default: on for speed; quick
                           runs only the dense tfjs-wasm attention yardstick)
  --steps N         training steps per run (recall, lm)   --lrs LIST   learning-rate sweep (recall)
  --mixers LIST     mixers to train (recall, lm), e.g. ovq,linear,gated-deltanet
  --base FILE       after the run, print ratios against an earlier results file
  --strict          exit 1 when a headline claim does not hold (inconclusive ones do not fail)
  -h, --help        this text
`;

export { UsageError };

/** Comma-separated positive numbers (integers unless `real`). */
const list = (flag: string, v: string | undefined, real = false) => {
  const xs = (v ?? '').split(',').filter(Boolean).map(Number);
  const what = real ? 'positive numbers' : 'positive integers';
  if (
    xs.length === 0 ||
    xs.some((x) => !Number.isFinite(x) || x <= 0 || (!real && !Number.isInteger(x)))
  ) {
    throw new UsageError(
      `${flag} got "${v}"; expected comma-separated ${what}, e.g. ${real ? '0.001,0.003' : '1024,4096'}`,
    );
  }
  return xs;
};

/** One positive number (integer unless `real`). */
const single = (flag: string, v: string | undefined, real = false, min = 1) => {
  const x = Number(v);
  if (
    v === undefined ||
    v.trim() === '' ||
    !Number.isFinite(x) ||
    x < min ||
    (!real && !Number.isInteger(x))
  ) {
    const what = real
      ? 'a positive number'
      : min === 0
        ? 'a non-negative integer'
        : 'a positive integer';
    throw new UsageError(`${flag} got "${v}"; expected ${what}`);
  }
  return x;
};

const mustExist = (what: string, path: string) => {
  if (!existsSync(path))
    throw new UsageError(
      `${what} "${path}" does not exist; expected an ovq-bench results file (bench-results/<suite>.json)`,
    );
  return path;
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
      strict: boolean;
    };

export function parseArgs(argv: string[]): ParsedArgs {
  const [command, ...rest] = argv;
  if (!command || command === '-h' || command === '--help' || command === 'help')
    return { command: 'help' };
  if (command === 'demo') {
    if (rest.length) throw new UsageError(`demo takes no flags; got "${rest.join(' ')}"`);
    return { command: 'demo' };
  }
  if (command === 'compare') {
    if (rest.length !== 2 || rest.some((f) => f.startsWith('-')))
      throw new UsageError(
        `compare got ${rest.length === 2 ? `"${rest.join(' ')}"` : `${rest.length} files`}; expected two files: ovq-bench compare a.json b.json`,
      );
    return {
      command,
      a: mustExist('compare: file', rest[0]),
      b: mustExist('compare: file', rest[1]),
    };
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
    strict: false,
  } as Extract<ParsedArgs, { out: string }>;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = () => {
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const one = () => single(flag, value());
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
        parsed.speed.warmup = single(flag, value(), false, 0);
        break;
      case '--budget':
        parsed.speed.budgetSeconds = single(flag, value(), true);
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
        if (parsed.impl.length === 0)
          throw new UsageError(`${flag} got an empty list; expected names such as ovq,softmax`);
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
        parsed.train = { ...parsed.train, learningRates: list(flag, value(), true) };
        break;
      case '--mixers':
        parsed.train = { ...parsed.train, mixers: value().split(',').filter(Boolean) };
        break;
      case '--base':
        parsed.base = mustExist('--base', value());
        break;
      case '--strict':
        parsed.strict = true;
        break;
      default:
        throw new UsageError(`unknown flag "${flag}" for ${command}; see ovq-bench --help`);
    }
  }
  return parsed;
}

export async function main(argv: string[]): Promise<number> {
  // train-speed parses its own flags (suites/train-speed.ts).
  if (argv[0] === 'train-speed') {
    if (argv.includes('--help') || argv.includes('-h')) {
      // The train-speed paragraph of the help: its flags are its own.
      const start = HELP.indexOf('  train-speed');
      console.log(HELP.slice(start, HELP.indexOf('\n\nflags', start)));
      return 0;
    }
    try {
      return await trainSpeedCli(argv.slice(1));
    } catch (error) {
      if (!(error instanceof Error && /^(train-speed: unknown flag|--)/.test(error.message)))
        throw error;
      console.error(`ovq-bench: ${error.message}`);
      return 2;
    }
  }
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
    case 'compare': {
      let a: ReturnType<typeof readReport>;
      let b: ReturnType<typeof readReport>;
      try {
        a = readReport(args.a);
        b = readReport(args.b);
      } catch (error) {
        console.error(`ovq-bench: ${error instanceof Error ? error.message : String(error)}`);
        return 2;
      }
      console.log(formatComparison(compareReports(a, b), args.a, args.b));
      return 0;
    }
    default: {
      let result: Awaited<ReturnType<typeof runSuite>>;
      try {
        result = await runSuite({
          suite: args.command,
          out: args.out,
          speed: args.speed,
          seeds: args.seeds,
          impl: args.impl,
          train: args.train,
          base: args.base,
          command: ['ovq-bench', ...argv],
        });
      } catch (error) {
        if (!(error instanceof UsageError)) throw error;
        console.error(`ovq-bench: ${error.message}`);
        return 2;
      }
      const failed = (result.report.headlines ?? []).filter((h) => h.verdict === 'not held');
      if (args.strict && failed.length) {
        console.error(
          `ovq-bench --strict: ${failed.length} headline claim(s) did not hold: ${failed.map((h) => h.claim).join('; ')}`,
        );
        return 1;
      }
      return 0;
    }
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
