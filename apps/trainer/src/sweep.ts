// `ovq-train sweep`: the same training budget for several mixers over a small learning-rate
// grid, scored at the training length and longer ones; reports the best run per mixer with its
// state size. This is the experiment behind apps/trainer/RESULTS.md.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  checkTrainConfigKeys,
  createTfjsMixer,
  DEFAULT_TRAIN_CONFIG,
  didYouMean,
  type EvalResult,
  type TrainConfig,
  TrainConfigError,
  train,
  validateTrainConfig,
} from '@ovq/train';
import { useBackend } from './backend.js';
import { BACKENDS } from './config.js';
import { UsageError } from './flags.js';
import { Progress } from './progress.js';

export type SweepConfig = {
  /** Shared settings; `model.mixers` is replaced by each entry of `mixers`. */
  base: Partial<TrainConfig> & Pick<TrainConfig, 'task' | 'model'>;
  /** Extra tasks to run the same grid on (each replaces base.task). */
  tasks?: TrainConfig['task'][];
  mixers: string[];
  lrs: number[];
  backend?: string;
};

export type SweepRow = {
  task: string;
  mixers: string;
  bestLr: number;
  /** Best-over-lr metric at each evaluation length (chosen by the training-length score). */
  results: { seqLen: number; metric: number }[];
  /** Numbers held by all mixer layers of one sequence at each evaluation length. */
  stateSize: number[];
  seconds: number;
};

const SWEEP_KEYS = ['base', 'tasks', 'mixers', 'lrs', 'backend'];

/** Reads a sweep file and checks all of it (every run's config included) before any training. */
export function readSweep(file: string): { sweep: SweepConfig; runs: TrainConfig[] } {
  if (!existsSync(file)) throw new UsageError(`--config: ${file} does not exist`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--config: ${file} is not valid JSON (${(e as Error).message})`);
  }
  const fail = (why: string): never => {
    throw new UsageError(`--config ${file}: ${why}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    fail('expected an object {base, tasks?, mixers, lrs, backend?}');
  const sweep = raw as SweepConfig;
  for (const key of Object.keys(sweep)) {
    if (SWEEP_KEYS.includes(key)) continue;
    const guess = didYouMean(key, SWEEP_KEYS);
    fail(
      `${key}: unknown key; ${guess ? `did you mean "${guess}"?` : `expected one of ${SWEEP_KEYS.join(', ')}`}`,
    );
  }
  if (
    !Array.isArray(sweep.mixers) ||
    sweep.mixers.length === 0 ||
    sweep.mixers.some((m) => typeof m !== 'string')
  )
    fail(
      `mixers: got ${JSON.stringify(sweep.mixers)}; expected mixer patterns such as ["swa,ovq", "swa,softmax"]`,
    );
  if (
    !Array.isArray(sweep.lrs) ||
    sweep.lrs.length === 0 ||
    sweep.lrs.some((x) => !(typeof x === 'number' && x > 0 && Number.isFinite(x)))
  )
    fail(
      `lrs: got ${JSON.stringify(sweep.lrs)}; expected positive learning rates such as [1e-3, 3e-3]`,
    );
  if (sweep.backend !== undefined && !(BACKENDS as readonly string[]).includes(sweep.backend))
    fail(`backend: got ${JSON.stringify(sweep.backend)}; choose ${BACKENDS.join(', ')}`);
  if (sweep.tasks !== undefined && (!Array.isArray(sweep.tasks) || sweep.tasks.length === 0))
    fail(`tasks: got ${JSON.stringify(sweep.tasks)}; expected a list of task specs`);
  const runs: TrainConfig[] = [];
  try {
    checkTrainConfigKeys(sweep.base);
    for (const task of sweep.tasks ?? [sweep.base.task])
      for (const mixers of sweep.mixers)
        for (const lr of sweep.lrs) {
          const config: TrainConfig = {
            ...DEFAULT_TRAIN_CONFIG,
            ...sweep.base,
            task,
            lr,
            model: { ...sweep.base.model, mixers },
          };
          validateTrainConfig(config);
          runs.push(config);
        }
  } catch (e) {
    fail(`${e instanceof TrainConfigError ? 'base.' : ''}${(e as Error).message}`);
  }
  return { sweep, runs };
}

export async function runSweep(file: string, out: string, progress: Progress): Promise<SweepRow[]> {
  const { sweep, runs } = readSweep(file);
  await useBackend(sweep.backend ?? 'wasm');
  mkdirSync(out, { recursive: true });
  // Progress goes to stderr (a bar on a terminal, a line per tenth of a run elsewhere), so a
  // sweep is never silent for the minute a run takes while stdout keeps only results.
  let done = 0;
  const rows: SweepRow[] = [];
  for (const task of sweep.tasks ?? [sweep.base.task]) {
    for (const mixers of sweep.mixers) {
      let best: { lr: number; evals: EvalResult[]; state: number[]; seconds: number } | undefined;
      for (const lr of sweep.lrs) {
        const config = runs[done];
        done += 1;
        process.stderr.write(
          `sweep run ${done}/${runs.length}: ${task.name} ${mixers} lr=${lr} (${config.steps} steps)\n`,
        );
        const status = new Progress(process.stderr, {
          lineEvery: Math.max(1, Math.round(config.steps / 10)),
        });
        const started = performance.now();
        const result = await train(config, {
          createMixer: createTfjsMixer,
          onEvent: (e) => {
            if (e.type === 'step') status.step(e);
          },
        });
        const seconds = (performance.now() - started) / 1000;
        const finalEvals = result.evals.filter((e) => e.step === config.steps);
        const score = higherIsBetter(finalEvals[0]);
        const state = config.evalLengths.map((m) =>
          result.model.stateSize(config.seqLen * m).reduce((a, b) => a + b, 0),
        );
        progress.message(
          `${task.name} ${mixers} lr=${lr}: ${finalEvals.map((e) => `T=${e.seqLen} ${e.metric.toFixed(3)}`).join('  ')}  (${seconds.toFixed(0)}s)`,
        );
        const bestScore = best ? higherIsBetter(best.evals[0]) : -Infinity;
        if (score > bestScore) best = { lr, evals: finalEvals, state, seconds };
        result.model.dispose();
      }
      if (!best) continue;
      rows.push({
        task: task.name,
        mixers,
        bestLr: best.lr,
        results: best.evals.map((e) => ({ seqLen: e.seqLen, metric: e.metric })),
        stateSize: best.state,
        seconds: best.seconds,
      });
      writeFileSync(join(out, 'sweep.json'), `${JSON.stringify({ sweep, rows }, null, 2)}\n`);
    }
  }
  const table = sweepTable(rows);
  writeFileSync(join(out, 'sweep.md'), table);
  progress.message(table);
  return rows;
}

/** A score where higher is better: accuracy as is, MSE negated. */
function higherIsBetter(e: EvalResult): number {
  return e.metricName === 'mse' ? -e.metric : e.metric;
}

/** Markdown table: one row per task × mixer pattern, metric and state size per eval length. */
export function sweepTable(rows: SweepRow[]): string {
  if (rows.length === 0) return '(no runs)\n';
  const lengths = rows[0].results.map((r) => r.seqLen);
  const head = `| task | mixers | best lr | ${lengths.map((T) => `T=${T} (state)`).join(' | ')} |`;
  const rule = `|${' --- |'.repeat(3 + lengths.length)}`;
  const body = rows.map(
    (r) =>
      `| ${r.task} | ${r.mixers} | ${r.bestLr} | ${r.results
        .map((x, i) => `${(100 * x.metric).toFixed(1)}% (${r.stateSize[i]})`)
        .join(' | ')} |`,
  );
  return `${[head, rule, ...body].join('\n')}\n`;
}
