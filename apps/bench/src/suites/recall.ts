// The trained recall comparison (MQAR and positional recall, zoology-style): per mixer and state
// budget, a small SWA+mixer hybrid trained with @ovq/train; the best held-out accuracy over a small
// learning-rate sweep, against the mixer layer's state size.
import { consoleReporter, pct, type Reporter, si, TextTable } from '../report/format.js';
import type { RecallPoint } from './recall-synthetic.js';
import { loadTrainApi, type RecallTask } from './train-api.js';

export type RecallOptions = {
  tasks: RecallTask[];
  mixers: { mixer: string; capacities: (number | undefined)[] }[];
  learningRates: number[];
  steps: number;
  seqLen: number;
  seed: number;
};

export const DEFAULT_RECALL: RecallOptions = {
  tasks: ['mqar', 'positional'],
  mixers: [
    { mixer: 'ovq', capacities: [4, 8, 16, 32] },
    { mixer: 'softmax', capacities: [undefined] },
    { mixer: 'linear', capacities: [undefined] },
    { mixer: 'decay-linear', capacities: [undefined] },
    { mixer: 'gated-deltanet', capacities: [undefined] },
    { mixer: 'vq', capacities: [16] },
    { mixer: 'kvm', capacities: [16] },
  ],
  learningRates: [1e-3, 3e-3],
  steps: 300,
  seqLen: 64,
  seed: 1,
};

export type TrainedRecallResult =
  | { status: 'skipped'; reason: string }
  | {
      status: 'ok';
      options: RecallOptions;
      points: (RecallPoint & { task: RecallTask; learningRate: number })[];
    };

export async function runRecall(
  options: RecallOptions = DEFAULT_RECALL,
  reporter: Reporter = consoleReporter,
): Promise<TrainedRecallResult> {
  const { api, missing } = await loadTrainApi();
  if (!api.trainRecall) {
    const reason = `@ovq/train not available (${missing ?? 'no trainRecall'})`;
    reporter.line(`recall: skipped: ${reason}`);
    return { status: 'skipped', reason };
  }
  const table = new TextTable([
    { title: 'task', width: 10 },
    { title: 'mixer', width: 16 },
    { title: 'N', width: 5, align: 'right' },
    { title: 'best lr', width: 8, align: 'right' },
    { title: 'state', width: 8, align: 'right' },
    { title: 'accuracy', width: 8, align: 'right' },
  ]);
  reporter.line(table.header());
  const points: (RecallPoint & { task: RecallTask; learningRate: number })[] = [];
  for (const task of options.tasks) {
    for (const { mixer, capacities } of options.mixers) {
      for (const capacity of capacities) {
        let best: { accuracy: number; stateNumbers: number; learningRate: number } | null = null;
        for (const learningRate of options.learningRates) {
          reporter.progress(`recall: ${task} ${mixer} N=${capacity ?? '-'} lr=${learningRate}…`);
          try {
            const r = await api.trainRecall({
              task,
              mixer,
              capacity,
              learningRate,
              steps: options.steps,
              seqLen: options.seqLen,
              seed: options.seed,
            });
            if (!best || r.accuracy > best.accuracy) best = { ...r, learningRate };
          } catch (error) {
            reporter.line(
              `recall: ${task} ${mixer} lr=${learningRate} failed: ${String(error).slice(0, 160)}`,
            );
          }
        }
        if (!best) continue;
        points.push({
          task,
          mixer,
          setting: capacity === undefined ? 'default' : `N=${capacity}`,
          stateNumbers: best.stateNumbers,
          accuracy: best.accuracy,
          perSeed: [best.accuracy],
          implementation: '@ovq/train',
          learningRate: best.learningRate,
        });
        reporter.line(
          table.row([
            task,
            mixer,
            String(capacity ?? '-'),
            String(best.learningRate),
            si(best.stateNumbers),
            pct(best.accuracy),
          ]),
        );
      }
    }
  }
  return { status: 'ok', options, points };
}
