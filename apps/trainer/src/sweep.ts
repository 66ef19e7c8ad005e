// `ovq-train sweep`: the same training budget for several mixers over a small learning-rate
// grid, scored at the training length and longer ones; reports the best run per mixer with its
// state size. This is the experiment behind apps/trainer/RESULTS.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  createTfjsMixer,
  DEFAULT_TRAIN_CONFIG,
  type EvalResult,
  type TrainConfig,
  train,
} from '@ovq/train';
import { useBackend } from './backend.js';
import type { Progress } from './progress.js';

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

export async function runSweep(file: string, out: string, progress: Progress): Promise<SweepRow[]> {
  const sweep = JSON.parse(readFileSync(file, 'utf8')) as SweepConfig;
  await useBackend(sweep.backend ?? 'wasm');
  mkdirSync(out, { recursive: true });
  const rows: SweepRow[] = [];
  for (const task of sweep.tasks ?? [sweep.base.task]) {
    for (const mixers of sweep.mixers) {
      let best: { lr: number; evals: EvalResult[]; state: number[]; seconds: number } | undefined;
      for (const lr of sweep.lrs) {
        const config: TrainConfig = {
          ...DEFAULT_TRAIN_CONFIG,
          ...sweep.base,
          task,
          lr,
          model: { ...sweep.base.model, mixers },
        };
        const started = performance.now();
        const result = await train(config, { createMixer: createTfjsMixer });
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
