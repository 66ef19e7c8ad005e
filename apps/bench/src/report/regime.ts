// The regime experiment's plots (apps/trainer/results/regime.json, schema ovq-results/1): MQAR
// and NIAH accuracy against evaluation length and against state at 4×, the NIAH length × depth
// grid, and byte-LM loss by position. Every point is the mean ± std over the seeds that have a row; a point
// without rows is left out and named in the caption ("missing"), never drawn as 0.
import type { ResultRow } from '@ovq/train';
import { pct, si } from './format.js';
import {
  escapeXml as esc,
  type HeatPanel,
  heatmapPanels,
  linePlot,
  mixerColor,
  type Series,
} from './svg.js';

// The schema string is repeated rather than imported so the report does not load tfjs at run
// time; the row type comes from @ovq/train (a type-only import).
export const RESULTS_SCHEMA = 'ovq-results/1';

/** A row of the results file (@ovq/train's ResultRow). */
export type RegimeRow = ResultRow;

export type RegimePlot = { id: string; svg: string; caption: string };

export type RegimeReport = {
  /** What the file holds, one sentence per fact (rows, tasks, what is missing). */
  summary: string[];
  plots: RegimePlot[];
  /** Plots that could not be drawn, with the reason. */
  notDrawn: { id: string; reason: string }[];
  /** Byte-LM extrapolation per series: loss at each length ÷ loss at the training length. */
  lossRatios: { series: string; evalLen: number; ratio: number; std: number; seeds: number }[];
  /** OVQ ablation rows (mixers `<pattern>[<variant>]`) against the default pattern's rows. */
  ablations: {
    task: string;
    metric: string;
    evalLen: number;
    budget: number | null;
    variant: string;
    value: Stat;
    /** The default pattern at the same task, metric, length and budget (absent: no rows). */
    baseline?: Stat;
  }[];
};

export function isRegimeResults(data: unknown): boolean {
  return (
    typeof data === 'object' &&
    data !== null &&
    (data as { schema?: unknown }).schema === RESULTS_SCHEMA
  );
}

/** The readable rows of a results file and a note per unreadable one (it is skipped, not guessed). */
export function regimeRows(data: unknown): { rows: RegimeRow[]; bad: string[] } {
  const file = data as { rows?: unknown };
  if (!isRegimeResults(data) || !Array.isArray(file.rows))
    return { rows: [], bad: [`not an ${RESULTS_SCHEMA} file with a rows array`] };
  const rows: RegimeRow[] = [];
  const bad: string[] = [];
  file.rows.forEach((row, i) => {
    const r = row as Record<string, unknown>;
    const strings = ['task', 'mixers', 'metric'].filter((k) => typeof r?.[k] !== 'string');
    const numbers = ['stateNumbers', 'trainLen', 'evalLen', 'seed', 'value'].filter(
      (k) => typeof r?.[k] !== 'number' || !Number.isFinite(r[k]),
    );
    const byPosition = r?.byPosition;
    const badBins =
      byPosition !== undefined &&
      !(Array.isArray(byPosition) && byPosition.every((v) => Number.isFinite(v)));
    if (strings.length || numbers.length || badBins)
      bad.push(
        `rows[${i}]: bad ${[...strings, ...numbers, ...(badBins ? ['byPosition'] : [])].join(', ')}`,
      );
    else rows.push(r as unknown as RegimeRow);
  });
  return { rows, bad };
}

const KIND_NAMES: Record<string, string> = { gdn: 'gated-deltanet', decay: 'decay-linear' };

/** The long-range mixer of a pattern ("swa,ovq" → ovq; "swa" alone → swa), in the report's names. */
export function patternMixer(pattern: string): string {
  // An ablation's variant ("swa,ovq[growth=log]") keeps its mixer's colour.
  const kinds = [
    ...new Set(
      pattern
        .replace(/\[.*\]$/, '')
        .split(',')
        .map((k) => k.trim()),
    ),
  ];
  const other = kinds.filter((k) => k !== 'swa');
  const kind = other.length ? other[other.length - 1] : 'swa';
  return KIND_NAMES[kind] ?? kind;
}

/** One series per (mixers, budget): the mixer's colour; larger budgets dashed, then dotted. */
function seriesStyles(rows: RegimeRow[]) {
  const budgets = [...new Set(rows.map((r) => r.budget).filter((b): b is number => b !== null))];
  budgets.sort((a, b) => a - b);
  return (pattern: string, budget: number | null) => {
    const rank = budget === null ? 0 : budgets.indexOf(budget);
    return {
      name: seriesName(pattern, budget),
      color: mixerColor(patternMixer(pattern)),
      dash: rank === 0 ? undefined : rank === 1 ? '7 4' : '2 3',
    };
  };
}

const seriesName = (pattern: string, budget: number | null) =>
  `${pattern} @${budget === null ? 'natural size' : si(budget)}`;

type Stat = { mean: number; std: number; n: number; seeds: number[] };

function stat(values: { seed: number; value: number }[]): Stat {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v.value, 0) / n;
  const std =
    n > 1 ? Math.sqrt(values.reduce((a, v) => a + (v.value - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n, seeds: values.map((v) => v.seed).sort((a, b) => a - b) };
}

const pm = (s: Stat, f: (x: number) => string) =>
  `${f(s.mean)}${s.n > 1 ? ` ± ${f(s.std).replace('%', '')}` : ''} (${s.n} seed${s.n === 1 ? '' : 's'})`;

/** Groups rows by a key, in first-seen order. */
function groupBy<T>(items: T[], key: (t: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const t of items) {
    const k = key(t);
    const list = out.get(k);
    if (list) list.push(t);
    else out.set(k, [t]);
  }
  return out;
}

const groupKey = (r: RegimeRow) => JSON.stringify([r.mixers, r.budget]);
const sortNum = (xs: Iterable<number>) => [...new Set(xs)].sort((a, b) => a - b);
const metricValue = (metric: string, name: string) => {
  const m = new RegExp(`^${name}=(.+)$`).exec(metric.split('@')[1] ?? '');
  return m ? Number(m[1]) : Number.NaN;
};

/** Series groups (mixers, budget) in a stable order: by mixer pattern as listed, then budget. */
function groups(
  rows: RegimeRow[],
): { pattern: string; budget: number | null; rows: RegimeRow[] }[] {
  return [...groupBy(rows, groupKey).values()]
    .map((rs) => ({ pattern: rs[0].mixers, budget: rs[0].budget, rows: rs }))
    .sort((a, b) => (a.budget ?? 0) - (b.budget ?? 0))
    .sort((a, b) => patternOrder(rows, a.pattern) - patternOrder(rows, b.pattern));
}

const patternOrder = (rows: RegimeRow[], p: string) => rows.findIndex((r) => r.mixers === p);

/** "a, b and c" (at most `max` items, then "and N more"). */
function list(items: string[], max = 8): string {
  if (items.length === 0) return '';
  const shown = items.slice(0, max);
  const rest = items.length - shown.length;
  if (rest > 0) return `${shown.join(', ')} and ${rest} more`;
  return shown.length === 1 ? shown[0] : `${shown.slice(0, -1).join(', ')} and ${shown.at(-1)}`;
}

/** The MQAR pair count measured at the most evaluation lengths (ties: the smallest). */
function commonPairs(rows: RegimeRow[]): number | undefined {
  const lengths = new Map<number, Set<number>>();
  for (const r of rows) {
    const p = metricValue(r.metric, 'pairs');
    if (!Number.isFinite(p)) continue;
    if (!lengths.has(p)) lengths.set(p, new Set());
    lengths.get(p)!.add(r.evalLen);
  }
  let best: number | undefined;
  for (const [p, ls] of [...lengths].sort((a, b) => a[0] - b[0]))
    if (best === undefined || ls.size > lengths.get(best)!.size) best = p;
  return best;
}

/** Points that some series have and others lack, named "series at x". */
function missingPoints(
  gs: { pattern: string; budget: number | null; rows: RegimeRow[] }[],
  xs: number[],
  has: (rows: RegimeRow[], x: number) => boolean,
  fmt: (x: number) => string,
): string[] {
  const out: string[] = [];
  for (const g of gs)
    for (const x of xs)
      if (!has(g.rows, x)) out.push(`${seriesName(g.pattern, g.budget)} at ${fmt(x)}`);
  return out;
}

/** Seeds present for some points of a plot but not others (so whiskers are over fewer seeds). */
function seedNote(stats: Stat[]): string {
  const all = sortNum(stats.flatMap((s) => s.seeds));
  const partial = stats.filter((s) => s.n < all.length).length;
  if (all.length === 0) return '';
  return partial
    ? ` Seeds in the file: ${all.join(', ')}; ${partial} point(s) have fewer of them (the tooltip gives n).`
    : ` Every point averages seeds ${all.join(', ')}.`;
}

/**
 * One accuracy curve family: rows with one value per (mixers, budget, evalLen, seed), the task's
 * name and what each value is ("with 16 key–value pairs", "mean over needle depths …").
 */
type AccuracyFamily = {
  /** Plot id prefix: `${prefix}-length`, `${prefix}-state`. */
  prefix: string;
  task: string;
  /** For captions ("with 16 key–value pairs") and, short, for titles ("16 pairs"). */
  what: string;
  short: string;
  rows: RegimeRow[];
  /** The goals sentence for the length plot (from its rows), or '' where none applies. */
  goals: (rows: RegimeRow[], trainLen: number) => string;
  /** Extra sentences for the length and state captions (other pair counts…). */
  lengthNote?: string;
  stateNote?: string;
};

function accuracyLengthPlot(f: AccuracyFamily, out: RegimeReport): void {
  const id = `${f.prefix}-length`;
  const { rows } = f;
  const trainLen = rows[0].trainLen;
  const lengths = sortNum(rows.map((r) => r.evalLen));
  const style = seriesStyles(rows);
  const stats: Stat[] = [];
  const gs = groups(rows);
  const series: Series[] = gs.map((g) => ({
    ...style(g.pattern, g.budget),
    points: lengths.flatMap((L) => {
      const at = g.rows.filter((r) => r.evalLen === L);
      if (!at.length) return [];
      const s = stat(at);
      stats.push(s);
      return [
        {
          x: L,
          y: s.mean,
          lo: s.mean - s.std,
          hi: s.mean + s.std,
          label: `T=${L} (${L / trainLen}×): ${pm(s, pct)}`,
        },
      ];
    }),
  }));
  const missing = missingPoints(
    gs,
    lengths,
    (rs, L) => rs.some((r) => r.evalLen === L),
    (L) => `${L / trainLen}×`,
  );
  const longest = lengths.at(-1)!;
  const atLongest = gs
    .map((g) => ({
      name: seriesName(g.pattern, g.budget),
      rows: g.rows.filter((r) => r.evalLen === longest),
    }))
    .filter((g) => g.rows.length)
    .map((g) => ({ name: g.name, s: stat(g.rows) }))
    .sort((a, b) => b.s.mean - a.s.mean);
  out.plots.push({
    id,
    caption:
      `${f.task} test accuracy ${f.what} at each evaluation length (log x; training length ${trainLen}, grey line), mean over seeds with ±1 std whiskers; one colour per mixer, dashed for the larger state budget. ` +
      (lengths.length > 1
        ? `At the longest length, ${longest} tokens (${longest / trainLen}×): ${atLongest.map((g) => `${g.name} ${pm(g.s, pct)}`).join('; ')}.`
        : `Only one evaluation length (${longest}) has rows, so nothing about extrapolation can be read yet.`) +
      f.goals(rows, trainLen) +
      seedNote(stats) +
      (missing.length ? ` Missing (no rows yet, not drawn): ${list(missing)}.` : '') +
      (f.lengthNote ?? ''),
    svg: linePlot({
      id,
      title: `${f.task} accuracy vs evaluation length (${f.short}, test split)`,
      xLabel: 'evaluation length (tokens, log)',
      yLabel: 'accuracy',
      xLog: true,
      yLog: false,
      series,
      guides: [
        {
          name: `training length ${trainLen}`,
          points: [
            { x: trainLen, y: 0 },
            { x: trainLen, y: 1 },
          ],
        },
      ],
    }),
  });
}

const FIXED_STATE = new Set(['gated-deltanet', 'decay-linear', 'linear']);

/**
 * OVQ against softmax at 1×, the best fixed-state mixer at 4× and KVM at 4× and 16×, each stated
 * only where the rows it needs exist; with `goals`, each with the issue's MQAR goal.
 */
function ovqComparisons(rows: RegimeRow[], trainLen: number, goals: boolean): string {
  const at = (pattern: (p: string) => boolean, L: number, budget?: number | null) =>
    groups(rows.filter((r) => pattern(r.mixers) && r.evalLen === L))
      .filter((g) => budget === undefined || g.budget === budget)
      .map((g) => ({ name: seriesName(g.pattern, g.budget), budget: g.budget, s: stat(g.rows) }));
  const ovq = (L: number) => at((p) => patternMixer(p) === 'ovq', L);
  const pts = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)} pts`;
  const goal = (text: string) => (goals ? ` (goal: ${text})` : '');
  const out: string[] = [];
  const softmax = at((p) => patternMixer(p) === 'softmax', trainLen);
  if (softmax.length)
    for (const o of ovq(trainLen))
      out.push(
        `at 1× ${o.name} vs ${softmax[0].name}: ${pts(o.s.mean - softmax[0].s.mean)}${goal('within 5 pts')}`,
      );
  const fixed = at((p) => FIXED_STATE.has(patternMixer(p)), 4 * trainLen);
  if (fixed.length) {
    const best = fixed.sort((a, b) => b.s.mean - a.s.mean)[0];
    for (const o of ovq(4 * trainLen))
      out.push(
        `at 4× ${o.name} vs the best fixed-state mixer (${best.name}): ${pts(o.s.mean - best.s.mean)}${goal('≥ +20 pts')}`,
      );
  }
  for (const m of [4, 16])
    for (const o of ovq(m * trainLen)) {
      const kvm = at((p) => patternMixer(p) === 'kvm', m * trainLen, o.budget)[0];
      if (kvm)
        out.push(
          `at ${m}× ${o.name} vs ${kvm.name}: ${pts(o.s.mean - kvm.s.mean)}${goal('ahead')}`,
        );
    }
  if (!out.length) return '';
  return goals ? ` Goals: ${out.join('; ')}.` : ` OVQ against the others: ${out.join('; ')}.`;
}

function accuracyStatePlot(f: AccuracyFamily, out: RegimeReport): void {
  const id = `${f.prefix}-state`;
  const rows = f.rows.filter((r) => r.evalLen === 4 * r.trainLen);
  if (!rows.length) {
    out.notDrawn.push({
      id,
      reason: `no ${f.task} test rows at 4× the training length yet`,
    });
    return;
  }
  const L = rows[0].evalLen;
  const stats: Stat[] = [];
  const patterns = [...new Set(rows.map((r) => r.mixers))];
  const series: Series[] = patterns.map((pattern) => {
    const gs = groups(rows.filter((r) => r.mixers === pattern));
    return {
      name: pattern,
      color: mixerColor(patternMixer(pattern)),
      points: gs
        .map((g) => {
          const s = stat(g.rows);
          stats.push(s);
          const state = g.rows.reduce((a, r) => a + r.stateNumbers, 0) / g.rows.length;
          return {
            x: state,
            y: s.mean,
            lo: s.mean - s.std,
            hi: s.mean + s.std,
            label: `budget ${g.budget === null ? 'natural size' : si(g.budget)}, ${si(state)} numbers: ${pm(s, pct)}`,
          };
        })
        .sort((a, b) => a.x - b.x),
    };
  });
  const best = series
    .flatMap((s) => s.points.map((p) => ({ name: s.name, p })))
    .sort((a, b) => b.p.y - a.p.y)[0];
  out.plots.push({
    id,
    caption:
      `${f.task} test accuracy at 4× the training length (${L} tokens, ${f.what.replace(/^with /, '')}) against the numbers all mixer layers hold per sequence (log x; SWA windows included), mean ± std over seeds. ` +
      'Each budgeted mixer has one dot per matched budget; fixed-state mixers one dot at their natural size. ' +
      `Highest: ${best.name} at ${si(best.p.x)} numbers, ${best.p.label?.split(': ').at(-1)}.` +
      seedNote(stats) +
      (f.stateNote ?? ''),
    svg: linePlot({
      id,
      title: `${f.task} accuracy vs state at 4× (${L} tokens, ${f.short})`,
      xLabel: 'state (numbers held per sequence, log)',
      yLabel: 'accuracy',
      xLog: true,
      yLog: false,
      series,
    }),
  });
}

/** MQAR at the pair count measured at the most lengths (others are in the table). */
function mqarPlots(test: RegimeRow[], out: RegimeReport): void {
  const mqar = test.filter((r) => r.task === 'mqar' && r.metric.startsWith('accuracy@pairs='));
  if (!mqar.length) {
    out.notDrawn.push({ id: 'regime-mqar-length', reason: 'no MQAR test rows yet' });
    out.notDrawn.push({
      id: 'regime-mqar-state',
      reason: 'no MQAR test rows at 4× the training length yet',
    });
    return;
  }
  const pairs = commonPairs(mqar)!;
  const others = sortNum(mqar.map((r) => metricValue(r.metric, 'pairs'))).filter(
    (p) => p !== pairs,
  );
  const family = {
    prefix: 'regime-mqar',
    task: 'MQAR',
    goals: (rows: RegimeRow[], trainLen: number) => ovqComparisons(rows, trainLen, true),
    lengthNote: others.length
      ? ` Other pair counts (${others.join(', ')}) are in the table below.`
      : '',
  };
  accuracyLengthPlot(
    {
      ...family,
      what: `with ${pairs} key–value pairs`,
      short: `${pairs} pairs`,
      rows: mqar.filter((r) => r.metric === `accuracy@pairs=${pairs}`),
    },
    out,
  );
  // At 4×, the common count if it was measured there, else the smallest one that was.
  const at4 = mqar.filter((r) => r.evalLen === 4 * r.trainLen);
  const pairs4 = sortNum(at4.map((r) => metricValue(r.metric, 'pairs')));
  const p4 = pairs4.includes(pairs) ? pairs : (pairs4[0] ?? pairs);
  accuracyStatePlot(
    {
      ...family,
      what: `with ${p4} pairs`,
      short: `${p4} pairs`,
      rows: mqar.filter((r) => r.metric === `accuracy@pairs=${p4}`),
      stateNote:
        pairs4.length > 1
          ? ` Other pair counts at 4× (${pairs4.filter((p) => p !== p4).join(', ')}) are in the table below.`
          : '',
    },
    out,
  );
}

/**
 * NIAH as one number per (mixers, budget, length, seed): the mean over the file's needle depths.
 * A seed that lacks a depth at a length gives no point there (a mean over fewer depths would not
 * be comparable); the heatmap shows which cell is missing.
 */
function niahCurves(test: RegimeRow[], out: RegimeReport): void {
  const rows = test.filter((r) => r.task === 'niah' && r.metric.startsWith('accuracy@depth='));
  if (!rows.length) {
    out.notDrawn.push({ id: 'regime-niah-length', reason: 'no NIAH test rows yet' });
    out.notDrawn.push({
      id: 'regime-niah-state',
      reason: 'no NIAH test rows at 4× the training length yet',
    });
    return;
  }
  const depths = sortNum(rows.map((r) => metricValue(r.metric, 'depth')));
  const means: RegimeRow[] = [];
  for (const rs of groupBy(rows, (r) =>
    JSON.stringify([r.mixers, r.budget, r.evalLen, r.seed]),
  ).values()) {
    const seen = new Set(rs.map((r) => metricValue(r.metric, 'depth')));
    if (seen.size !== depths.length) continue;
    means.push({
      ...rs[0],
      metric: 'accuracy@mean-depth',
      value: rs.reduce((a, r) => a + r.value, 0) / rs.length,
      stateNumbers: rs.reduce((a, r) => a + r.stateNumbers, 0) / rs.length,
    });
  }
  const family = {
    prefix: 'regime-niah',
    task: 'NIAH',
    what: `averaged over needle depths ${list(depths.map(String))}`,
    short: 'mean over depths',
    rows: means,
    goals: (rs: RegimeRow[], trainLen: number) => {
      const at4 = groups(rs.filter((r) => r.evalLen === 4 * trainLen)).map((g) => ({
        name: seriesName(g.pattern, g.budget),
        s: stat(g.rows),
      }));
      const met = at4.filter((g) => g.s.mean >= 0.9).map((g) => g.name);
      return (
        (at4.length
          ? ` Goal ≥ 90% at 4×: ${met.length ? `met by ${list(met)}` : 'met by none'}.`
          : '') + ovqComparisons(rs, trainLen, false)
      );
    },
  };
  accuracyLengthPlot(family, out);
  accuracyStatePlot(family, out);
}

function niahPlot(test: RegimeRow[], out: RegimeReport): void {
  const rows = test.filter((r) => r.task === 'niah' && r.metric.startsWith('accuracy@depth='));
  if (!rows.length) {
    out.notDrawn.push({ id: 'regime-niah', reason: 'no NIAH test rows yet' });
    return;
  }
  const trainLen = rows[0].trainLen;
  const lengths = sortNum(rows.map((r) => r.evalLen));
  const depths = sortNum(rows.map((r) => metricValue(r.metric, 'depth')));
  const gs = groups(rows);
  let empty = 0;
  const panels: HeatPanel[] = gs.map((g) => ({
    name: seriesName(g.pattern, g.budget),
    color: mixerColor(patternMixer(g.pattern)),
    cells: lengths.flatMap((L) =>
      depths.map((d) => {
        const at = g.rows.filter((r) => r.evalLen === L && metricValue(r.metric, 'depth') === d);
        if (!at.length) {
          empty++;
          return { col: L, row: d, value: null, label: `T=${L}, depth ${d}: no rows` };
        }
        const s = stat(at);
        return { col: L, row: d, value: s.mean, label: `T=${L}, depth ${d}: ${pm(s, pct)}` };
      }),
    ),
  }));
  const at4 = gs
    .map((g) => ({
      name: seriesName(g.pattern, g.budget),
      rows: g.rows.filter((r) => r.evalLen === 4 * trainLen),
    }))
    .filter((g) => g.rows.length)
    // Each seed's mean over depths first, then mean ± std over seeds.
    .map((g) => ({
      name: g.name,
      s: stat(
        [...groupBy(g.rows, (r) => String(r.seed)).values()].map((rs) => ({
          seed: rs[0].seed,
          value: rs.reduce((a, r) => a + r.value, 0) / rs.length,
        })),
      ),
    }));
  out.plots.push({
    id: 'regime-niah',
    caption:
      `Needle in a haystack (single needle): test accuracy by evaluation length (columns, training length ${trainLen}) and needle depth (rows, 0 = start of the context), mean over seeds; one panel per mixer and budget, darker is better, the number in each cell is the mean. ` +
      (at4.length
        ? `Averaged over depths at 4× (${4 * trainLen} tokens), against the ≥ 90% goal: ${at4.map((g) => `${g.name} ${pm(g.s, pct)}${g.s.mean >= 0.9 ? ' (meets it)' : ''}`).join('; ')}.`
        : `No rows at 4× the training length yet, so the ≥ 90% goal cannot be judged.`) +
      (empty ? ` ${empty} cell(s) have no rows yet: hatched and marked "—", not 0.` : ''),
    svg: heatmapPanels({
      id: 'regime-niah',
      title: 'NIAH accuracy by length × depth (test split)',
      colLabel: 'evaluation length (tokens)',
      rowLabel: 'needle depth',
      cols: lengths,
      rows: depths,
      panels,
    }),
  });
}

function lossPlot(test: RegimeRow[], out: RegimeReport): void {
  const loss = test.filter((r) => r.task === 'byte-lm' && r.metric === 'loss');
  if (!loss.length) {
    out.notDrawn.push({ id: 'regime-loss', reason: 'no byte-LM test rows yet' });
    return;
  }
  const trainLen = loss[0].trainLen;
  const gs = groups(loss);
  // The goal's number: loss at each length ÷ loss at 1×, per seed, then mean ± std.
  for (const g of gs) {
    for (const L of sortNum(g.rows.map((r) => r.evalLen)).filter((L) => L !== trainLen)) {
      const ratios = g.rows
        .filter((r) => r.evalLen === L)
        .flatMap((r) => {
          const base = g.rows.find((b) => b.evalLen === trainLen && b.seed === r.seed);
          return base && base.value > 0 ? [{ seed: r.seed, value: r.value / base.value }] : [];
        });
      if (!ratios.length) continue;
      const s = stat(ratios);
      out.lossRatios.push({
        series: seriesName(g.pattern, g.budget),
        evalLen: L,
        ratio: s.mean,
        std: s.std,
        seeds: s.n,
      });
    }
  }
  const binned = loss.filter((r) => r.byPosition?.length);
  if (!binned.length) {
    out.notDrawn.push({
      id: 'regime-loss',
      reason:
        'the byte-LM rows carry no loss by position (written before byPosition existed); mean loss per length is in the table below',
    });
    return;
  }
  const longest = Math.max(...binned.map((r) => r.evalLen));
  const rows = binned.filter((r) => r.evalLen === longest);
  const style = seriesStyles(rows);
  const stats: Stat[] = [];
  const series: Series[] = groups(rows).map((g) => {
    const bins = g.rows[0].byPosition!.length;
    const same = g.rows.filter((r) => r.byPosition!.length === bins);
    return {
      ...style(g.pattern, g.budget),
      points: Array.from({ length: bins }, (_, i) => {
        const start = Math.floor((i * longest) / bins);
        const end = Math.floor(((i + 1) * longest) / bins);
        const s = stat(same.map((r) => ({ seed: r.seed, value: r.byPosition![i] })));
        if (i === 0) stats.push(s);
        return {
          x: (start + end) / 2,
          y: s.mean,
          lo: s.mean - s.std,
          hi: s.mean + s.std,
          label: `positions ${start}–${end - 1}: loss ${pm(s, (x) => x.toFixed(3))}`,
        };
      }),
    };
  });
  const ratios = out.lossRatios.filter((r) => r.evalLen === longest);
  const m = longest / trainLen;
  const missing = gs
    .filter((g) => !g.rows.some((r) => r.evalLen === longest && r.byPosition?.length))
    .map((g) => seriesName(g.pattern, g.budget));
  out.plots.push({
    id: 'regime-loss',
    caption:
      `Byte-level LM: held-out loss (nats per byte) by position in ${longest}-token sequences, ${m}× the training length ${trainLen} (grey line), averaged in ${series[0].points.length} equal position bins, mean ± std over seeds (log x). ` +
      'A mixer that extrapolates keeps its loss flat or falling past the training length; one that blows up rises there. ' +
      (ratios.length
        ? `Loss at ${m}× ÷ loss at 1× (the goal is within 2%, ≤ 1.02): ${ratios.map((r) => `${r.series} ${r.ratio.toFixed(3)}${r.seeds > 1 ? ` ± ${r.std.toFixed(3)}` : ''} (${r.seeds} seed${r.seeds === 1 ? '' : 's'})${r.ratio <= 1.02 ? ', within 2%' : ''}`).join('; ')}.`
        : `No seed has both the ${m}× and the 1× loss, so the ratio cannot be given yet.`) +
      seedNote(stats) +
      (missing.length ? ` Missing at ${m}× (no rows yet, not drawn): ${list(missing)}.` : ''),
    svg: linePlot({
      id: 'regime-loss',
      title: `Byte-LM loss vs position at ${m}× (${longest} tokens)`,
      xLabel: 'position (tokens, log)',
      yLabel: 'loss (nats/byte)',
      xLog: true,
      yLog: false,
      yZero: false,
      series,
      guides: [
        {
          name: `training length ${trainLen}`,
          points: [
            { x: trainLen, y: Math.min(...series.flatMap((s) => s.points.map((p) => p.y))) },
            { x: trainLen, y: Math.max(...series.flatMap((s) => s.points.map((p) => p.y))) },
          ],
        },
      ],
    }),
  });
}

/** Every regime plot the file's rows allow, and what keeps the others from being drawn. */
export function regimeReport(data: unknown): RegimeReport {
  const { rows, bad } = regimeRows(data);
  const out: RegimeReport = {
    summary: [],
    plots: [],
    notDrawn: [],
    lossRatios: [],
    ablations: [],
  };
  // Ablation rows have their own table; the plots compare the main patterns.
  const isAblation = (r: RegimeRow) => /\[.+\]$/.test(r.mixers);
  const all = rows.filter((r) => !r.task.includes(':'));
  const test = all.filter((r) => !isAblation(r));
  const validation = rows.filter((r) => r.task.endsWith(':validation'));
  const tasks = [...new Set(test.map((r) => r.task))];
  out.summary.push(
    `${rows.length} row(s): ${test.length} on the test split (${tasks.length ? tasks.join(', ') : 'no task yet'}), ${validation.length} from the learning-rate search on the validation split (${[...new Set(validation.map((r) => `${r.task.split(':')[0]} ${seriesName(r.mixers, r.budget)}`))].join(', ') || 'none'}).`,
  );
  if (bad.length) out.summary.push(`Unreadable rows, left out: ${list(bad, 5)}.`);
  const searched = new Set(validation.map((r) => `${r.task.split(':')[0]}|${groupKey(r)}`));
  // Ablation variants have their own search and test rows, so `all`, not `test`.
  const tested = new Set(all.map((r) => `${r.task}|${groupKey(r)}`));
  const waiting = [...searched].filter((k) => !tested.has(k));
  if (waiting.length)
    out.summary.push(
      `${waiting.length} group(s) have a learning-rate search but no test rows yet: ${list(
        waiting.map((k) => {
          const [task, key] = k.split('|');
          const [m, b] = JSON.parse(key) as [string, number | null];
          return `${task} ${seriesName(m, b)}`;
        }),
      )}.`,
    );
  mqarPlots(test, out);
  niahCurves(test, out);
  niahPlot(test, out);
  lossPlot(test, out);
  const ablated = all.filter(isAblation);
  for (const rs of groupBy(ablated, (r) =>
    JSON.stringify([r.task, r.metric, r.evalLen, r.budget, r.mixers]),
  ).values()) {
    const r = rs[0];
    const [pattern, variant] = /^(.*)\[(.+)\]$/.exec(r.mixers)!.slice(1);
    // Paired: the default on the variant's seeds only (a one-seed variant against a three-seed
    // mean would mix the seeds' spread into the difference).
    const seeds = new Set(rs.map((v) => v.seed));
    const base = test.filter(
      (b) =>
        b.task === r.task &&
        b.metric === r.metric &&
        b.evalLen === r.evalLen &&
        b.budget === r.budget &&
        b.mixers === pattern &&
        seeds.has(b.seed),
    );
    out.ablations.push({
      task: r.task,
      metric: r.metric,
      evalLen: r.evalLen,
      budget: r.budget,
      variant: `${pattern} [${variant}]`,
      value: stat(rs),
      ...(base.length ? { baseline: stat(base) } : {}),
    });
  }
  if (ablated.length)
    out.summary.push(
      `${ablated.length} ablation row(s) (${list([...new Set(ablated.map((r) => r.mixers))])}) are compared with their default pattern in the ablation table, not drawn.`,
    );
  return out;
}

/** The regime section's HTML: summary, figures with their paragraphs, what could not be drawn. */
export function regimeHtml(
  data: unknown,
  table: (head: string[], rows: string[][]) => string,
): string {
  const r = regimeReport(data);
  const parts: string[] = [];
  parts.push(`<p>${r.summary.map(esc).join(' ')}</p>`);
  for (const p of r.plots)
    parts.push(`<figure>${p.svg}<figcaption>${esc(p.caption)}</figcaption></figure>`);
  if (r.notDrawn.length) {
    parts.push('<p>Not drawn, for lack of data:</p><ul class="not-drawn">');
    for (const n of r.notDrawn)
      parts.push(
        `<li data-plot="${esc(n.id)}">${esc(PLOT_NAMES[n.id] ?? n.id)}: ${esc(n.reason)}.</li>`,
      );
    parts.push('</ul>');
  }
  if (r.ablations.length) {
    const fmt = (s: Stat, metric: string) =>
      pm(s, metric.startsWith('accuracy') ? pct : (x: number) => x.toFixed(3));
    parts.push(
      '<p>OVQ ablations in the trained setting: each variant against the default pattern at the same task, metric, length and budget, on the seeds the variant ran (mean ± std over seeds; "—" where the default has no rows for them).</p>',
    );
    parts.push(
      table(
        [
          'task',
          'metric',
          'evaluation length',
          'budget',
          'variant',
          'variant value',
          'default value',
        ],
        r.ablations.map((a) => [
          a.task,
          a.metric,
          String(a.evalLen),
          a.budget === null ? 'natural' : si(a.budget),
          a.variant,
          fmt(a.value, a.metric),
          a.baseline ? fmt(a.baseline, a.metric) : '—',
        ]),
      ),
    );
  }
  if (r.lossRatios.length)
    parts.push(
      table(
        ['byte-LM series', 'evaluation length', 'loss ÷ loss at 1×', 'std', 'seeds'],
        r.lossRatios.map((x) => [
          x.series,
          String(x.evalLen),
          x.ratio.toFixed(4),
          x.std.toFixed(4),
          String(x.seeds),
        ]),
      ),
    );
  return parts.join('\n');
}

const PLOT_NAMES: Record<string, string> = {
  'regime-mqar-length': 'MQAR accuracy vs evaluation length',
  'regime-mqar-state': 'MQAR accuracy vs state at 4×',
  'regime-niah-length': 'NIAH accuracy vs evaluation length',
  'regime-niah-state': 'NIAH accuracy vs state at 4×',
  'regime-niah': 'NIAH length × depth heatmap',
  'regime-loss': 'byte-LM loss vs position',
};
