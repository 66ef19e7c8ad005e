// The results file as Markdown tables (what RESULTS.md quotes): per task, one row per (mixers,
// budget) with mean ± std over seeds at every evaluation length, then the breakdown the task has
// (NIAH by depth, MQAR by pair count), and the learning-rate search on the validation split.
// Each seed is first averaged over the task's sub-metrics (NIAH's depths), then the seeds are
// averaged, so ± is the spread between seeds, not between depths.
import { meanStd, type ResultRow, type ResultsFile } from './results.js';

type Group = { mixers: string; budget: number | null; rows: ResultRow[] };

const groupName = (g: Pick<Group, 'mixers' | 'budget'>) =>
  `${g.mixers} @ ${g.budget === null ? 'natural size' : g.budget}`;

/** Groups by (mixers, budget): mixers in first-seen order, budgets ascending (natural first). */
function groupRows(rows: ResultRow[]): Group[] {
  const byKey = new Map<string, Group>();
  for (const r of rows) {
    const key = JSON.stringify([r.mixers, r.budget]);
    const g = byKey.get(key);
    if (g) g.rows.push(r);
    else byKey.set(key, { mixers: r.mixers, budget: r.budget, rows: [r] });
  }
  const order = [...new Set(rows.map((r) => r.mixers))];
  return [...byKey.values()].sort(
    (a, b) =>
      order.indexOf(a.mixers) - order.indexOf(b.mixers) || (a.budget ?? 0) - (b.budget ?? 0),
  );
}

const sorted = (xs: Iterable<number>) => [...new Set(xs)].sort((a, b) => a - b);

/** The `name=value` part of a metric such as `accuracy@depth=0.5` (undefined for plain ones). */
function metricPart(metric: string): { name: string; value: string } | undefined {
  const m = /^[^@]+@([^=]+)=(.+)$/.exec(metric);
  return m ? { name: m[1], value: m[2] } : undefined;
}

/** "48.2 ± 7.8" (accuracy in %), "1.234 ± 0.010" (loss), "—" for no value. */
function format(values: number[], accuracy: boolean): string {
  if (!values.length) return '—';
  const { mean, std, n } = meanStd(values);
  const f = (x: number) => (accuracy ? (100 * x).toFixed(1) : x.toFixed(3));
  return n > 1 ? `${f(mean)} ± ${f(std)}` : f(mean);
}

/**
 * Per seed: the mean over `rows` (one evaluation length); a seed missing one of `metrics` (the
 * sub-metrics the group has at any length) is left out rather than averaged over fewer.
 */
function perSeed(rows: ResultRow[], metrics: Set<string>): number[] {
  const bySeed = new Map<number, ResultRow[]>();
  for (const r of rows) bySeed.set(r.seed, [...(bySeed.get(r.seed) ?? []), r]);
  return [...bySeed.entries()]
    .sort((a, b) => a[0] - b[0])
    .filter(([, rs]) => new Set(rs.map((r) => r.metric)).size === metrics.size)
    .map(([, rs]) => rs.reduce((a, r) => a + r.value, 0) / rs.length);
}

const table = (head: string[], body: string[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...body.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

function lengthHead(trainLen: number, lengths: number[]): string[] {
  return lengths.map((L) => `${L / trainLen}× (${L})`);
}

/** One table: a row per group, a column per length; values from `pick` rows, per seed first. */
function summaryTable(groups: Group[], pick: (r: ResultRow) => boolean, accuracy: boolean) {
  const rows = groups.flatMap((g) => g.rows.filter(pick));
  const trainLen = rows[0].trainLen;
  const lengths = sorted(rows.map((r) => r.evalLen));
  const body = groups.flatMap((g) => {
    const mine = g.rows.filter(pick);
    if (!mine.length) return [];
    const metrics = new Set(mine.map((r) => r.metric));
    const seeds = sorted(mine.map((r) => r.seed));
    const state = (L: number) => mine.find((r) => r.evalLen === L)?.stateNumbers;
    const first = state(lengths[0]);
    const last = state(lengths.at(-1)!);
    return [
      [
        groupName(g),
        first === undefined || last === undefined ? '—' : `${first} / ${last}`,
        `${seeds.length} (${seeds.join(', ')})`,
        sorted(mine.map((r) => r.lr)).join(', '),
        ...lengths.map((L) =>
          format(
            perSeed(
              mine.filter((r) => r.evalLen === L),
              metrics,
            ),
            accuracy,
          ),
        ),
      ],
    ];
  });
  return table(
    [
      'mixers @ budget',
      `state numbers (${lengths[0]} / ${lengths.at(-1)})`,
      'seeds',
      'lr',
      ...lengthHead(trainLen, lengths),
    ],
    body,
  );
}

/** A row per group, a column per (length, sub-metric value): the mean over seeds. */
function breakdownTable(groups: Group[], name: string, accuracy: boolean): string {
  const rows = groups.flatMap((g) => g.rows);
  const trainLen = rows[0].trainLen;
  const lengths = sorted(rows.map((r) => r.evalLen));
  const parts = [...new Set(rows.map((r) => metricPart(r.metric)!.value))].sort(
    (a, b) => Number(a) - Number(b),
  );
  const columns = lengths.flatMap((L) => parts.map((p) => ({ L, p })));
  const present = columns.filter((c) =>
    rows.some((r) => r.evalLen === c.L && metricPart(r.metric)!.value === c.p),
  );
  return table(
    ['mixers @ budget', ...present.map((c) => `${c.L / trainLen}× ${name} ${c.p}`)],
    groups.map((g) => [
      groupName(g),
      ...present.map((c) =>
        format(
          g.rows
            .filter((r) => r.evalLen === c.L && metricPart(r.metric)!.value === c.p)
            .map((r) => r.value),
          accuracy,
        ),
      ),
    ]),
  );
}

/** The learning-rate search: a row per group, a column per rate (validation, training length). */
function lrTable(groups: Group[], accuracy: boolean): string {
  const lrs = sorted(groups.flatMap((g) => g.rows.map((r) => r.lr)));
  return table(
    ['mixers @ budget', ...lrs.map((lr) => `lr ${lr}`)],
    groups.map((g) => {
      const metrics = new Set(g.rows.map((r) => r.metric));
      return [
        groupName(g),
        ...lrs.map((lr) => {
          const at = g.rows.filter((r) => r.lr === lr && r.evalLen === r.trainLen);
          return at.length ? format(perSeed(at, metrics), accuracy) : '—';
        }),
      ];
    }),
  );
}

/**
 * Markdown tables of an ovq-results/1 file, per task: the summary by length, the task's
 * breakdown (NIAH by depth, MQAR by pairs: means over seeds), and the lr search on validation.
 * `task` limits it to one task name (e.g. "niah").
 */
export function resultTables(file: ResultsFile, options: { task?: string } = {}): string {
  const tasks = [...new Set(file.rows.map((r) => r.task.split(':')[0]))].filter(
    (t) => options.task === undefined || t === options.task,
  );
  if (!tasks.length)
    throw new RangeError(
      `task is ${JSON.stringify(options.task)}; expected one of the file's tasks (${[...new Set(file.rows.map((r) => r.task.split(':')[0]))].join(', ') || 'it has no rows'})`,
    );
  const out: string[] = [];
  for (const task of tasks) {
    const test = file.rows.filter((r) => r.task === task);
    const validation = file.rows.filter((r) => r.task === `${task}:validation`);
    out.push(`## ${task}`);
    if (test.length) {
      const groups = groupRows(test);
      const parted = test.filter((r) => metricPart(r.metric) !== undefined);
      const partName = parted.length ? metricPart(parted[0].metric)!.name : undefined;
      const plainMetrics = [
        ...new Set(test.filter((r) => !metricPart(r.metric)).map((r) => r.metric)),
      ];
      if (partName === 'depth') {
        out.push(
          `Test split, accuracy (%) averaged over needle depths per seed, then mean ± std over seeds:`,
          summaryTable(groups, (r) => metricPart(r.metric)?.name === 'depth', true),
          'By depth (mean ± std over seeds):',
          breakdownTable(groupRows(parted), 'depth', true),
        );
      } else if (partName !== undefined) {
        // MQAR: a summary per pair count (pairs are not averaged together).
        for (const p of [...new Set(parted.map((r) => metricPart(r.metric)!.value))].sort(
          (a, b) => Number(a) - Number(b),
        )) {
          const metric = `${parted[0].metric.split('@')[0]}@${partName}=${p}`;
          out.push(
            `Test split, ${metric} (%), mean ± std over seeds:`,
            summaryTable(groups, (r) => r.metric === metric, true),
          );
        }
      }
      for (const metric of plainMetrics) {
        const accuracy = metric.startsWith('accuracy');
        out.push(
          `Test split, ${metric}${accuracy ? ' (%)' : ''}, mean ± std over seeds:`,
          summaryTable(groups, (r) => r.metric === metric, accuracy),
        );
      }
    }
    if (validation.length) {
      const accuracy = validation[0].metric.startsWith('accuracy');
      const picked = validation.filter((r) =>
        accuracy ? r.metric.startsWith('accuracy') : r.metric === 'loss',
      );
      out.push(
        `Learning-rate search (validation split, seed ${sorted(picked.map((r) => r.seed)).join(', ')}, at the training length, ${accuracy ? 'accuracy (%) averaged over the metrics of each seed' : 'loss'}):`,
        lrTable(groupRows(picked), accuracy),
      );
    }
  }
  return `${out.join('\n\n')}\n`;
}
