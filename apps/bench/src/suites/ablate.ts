// OVQ's own axes (the paper's ablations) on the synthetic recall sequence, without training:
// spawn, growth, update and read rules, and capacity changed half-way through the stream.
import { type OvqConfig, setOvqCapacity } from '@ovq/core';
import {
  DEFAULT_RECALL_DEMO,
  type RecallDemoOptions,
  recallAccuracy,
  recallSequence,
} from '../recall-demo.js';
import { consoleReporter, pct, type Reporter, si, TextTable } from '../report/format.js';
import { OVQ_ENGINE, runOvq } from './ovq-engine.js';

export type AblateOptions = { sequence: RecallDemoOptions; seeds: number[]; capacity: number };

export const DEFAULT_ABLATE: AblateOptions = {
  sequence: DEFAULT_RECALL_DEMO,
  seeds: [1, 2, 3, 4, 5, 6, 7, 8],
  // Below the demo's 256 so that the dictionary fills and the rules that manage it matter.
  capacity: 128,
};

export type Variant = {
  axis: 'default' | 'spawn' | 'growth' | 'update' | 'read' | 'test-time capacity';
  name: string;
  config: Partial<OvqConfig>;
  /** Capacity from T/2 on (test-time memory budget); undefined = unchanged. */
  capacityAfterHalf?: number;
};

export function ablationVariants(N: number): Variant[] {
  return [
    { axis: 'default', name: 'farthest · saturating · mean · dot', config: {} },
    { axis: 'spawn', name: 'random', config: { spawn: 'random', seed: 1 } },
    { axis: 'growth', name: `log (α=${N / 4})`, config: { growth: { kind: 'log', alpha: N / 4 } } },
    {
      axis: 'growth',
      name: 'linear (r=1/16)',
      config: { growth: { kind: 'linear', rate: 1 / 16 } },
    },
    { axis: 'growth', name: 'fixed', config: { growth: 'fixed' } },
    { axis: 'update', name: 'ema (η=0.1)', config: { update: { kind: 'ema', rate: 0.1 } } },
    { axis: 'read', name: 'gaussian', config: { read: 'gaussian' } },
    { axis: 'test-time capacity', name: `N→${N / 2} at T/2`, config: {}, capacityAfterHalf: N / 2 },
    { axis: 'test-time capacity', name: `N→${2 * N} at T/2`, config: {}, capacityAfterHalf: 2 * N },
  ];
}

export type AblationRow = {
  axis: Variant['axis'];
  variant: string;
  accuracy: number;
  perSeed: number[];
  /** Mean final dictionary size n and the numbers it keeps: n·(dk+dv+1) + C·(dk+dv). */
  dictionarySize: number;
  stateNumbers: number;
  implementation: string;
};

export type AblationFinding = {
  axis: Variant['axis'];
  /** The best variant on this axis (the default included) and its margin over the runner-up. */
  winner: string;
  winnerAccuracy: number;
  runnerUp: string;
  runnerUpAccuracy: number;
  /** Winner minus runner-up, its standard error over seeds (paired), and the seeds. */
  margin: number;
  marginSe: number;
  seeds: number;
  /** One sentence: which setting won, by how much, over how many seeds. */
  text: string;
};

export type AblateResult = {
  label: string;
  options: AblateOptions;
  rows: AblationRow[];
  findings: AblationFinding[];
};

/** Per axis: the default against every variant of that axis; who won, by how much, how sure. */
export function ablationFindings(rows: AblationRow[]): AblationFinding[] {
  const def = rows.find((r) => r.axis === 'default');
  if (!def) return [];
  const axes = [...new Set(rows.map((r) => r.axis))].filter((a) => a !== 'default');
  return axes.map((axis) => {
    const contenders = [
      { ...def, variant: `default (${def.variant})` },
      ...rows.filter((r) => r.axis === axis),
    ].sort((a, b) => b.accuracy - a.accuracy);
    const [w, r] = contenders;
    const diffs = w.perSeed.map((x, i) => x - r.perSeed[i]);
    const n = diffs.length;
    const m = diffs.reduce((a, b) => a + b, 0) / n;
    const sd =
      n > 1 ? Math.sqrt(diffs.reduce((a, d) => a + (d - m) ** 2, 0) / (n - 1)) : Number.NaN;
    const se = sd / Math.sqrt(n);
    const sure = n > 1 && Math.abs(m) > 2 * se;
    const pts = (x: number) => `${(100 * x).toFixed(1)}%`;
    const text =
      w.accuracy === r.accuracy
        ? `${axis}: ${w.variant} and ${r.variant} tie at ${pts(w.accuracy)} (${n} seed${n > 1 ? 's' : ''})`
        : `${axis}: ${w.variant} wins with ${pts(w.accuracy)} vs ${r.variant} ${pts(r.accuracy)}, +${(100 * (w.accuracy - r.accuracy)).toFixed(1)} pts over ${n} seed${n > 1 ? 's' : ''}` +
          (n > 1
            ? ` (paired ± ${(100 * se).toFixed(1)} pts: ${sure ? 'beyond 2σ' : 'within 2σ, not a clear win'})`
            : ' (one seed: no error bar)') +
          (w.variant.startsWith('default') ? '' : ' — the default loses on this axis');
    return {
      axis,
      winner: w.variant,
      winnerAccuracy: w.accuracy,
      runnerUp: r.variant,
      runnerUpAccuracy: r.accuracy,
      margin: w.accuracy - r.accuracy,
      marginSe: se,
      seeds: n,
      text,
    };
  });
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export function runAblate(
  options: AblateOptions = DEFAULT_ABLATE,
  reporter: Reporter = consoleReporter,
): AblateResult {
  const o = options.sequence;
  const N = options.capacity;
  const table = new TextTable([
    { title: 'axis', width: 18 },
    { title: 'variant', width: 34 },
    { title: 'recall', width: 7, align: 'right' },
    { title: 'n', width: 5, align: 'right' },
    { title: 'state', width: 7, align: 'right' },
    { title: 'implementation', width: 16 },
  ]);
  reporter.line(
    `OVQ ablations (untrained synthetic recall, N=${N}, C=${o.chunkSize}, β=${o.beta}, T=${o.seqLen}, mean over seeds ${options.seeds.join(',')})`,
  );
  reporter.line(table.header());
  const rows: AblationRow[] = [];
  for (const v of ablationVariants(N)) {
    reporter.progress(`ablate: ${v.axis} ${v.name}…`);
    const config: OvqConfig = { capacity: N, chunkSize: o.chunkSize, beta: o.beta, ...v.config };
    const accs: number[] = [];
    const sizes: number[] = [];
    for (const seed of options.seeds) {
      const c = recallSequence({ ...o, seed });
      const d = o.dim;
      let output: Float64Array;
      let size: number;
      if (v.capacityAfterHalf === undefined) {
        const r = runOvq(c.seq, config);
        output = Float64Array.from(r.output);
        size = r.state.size;
      } else {
        // Stream the first half at N, then change the budget and stream the rest.
        const half = Math.floor(o.seqLen / 2 / o.chunkSize) * o.chunkSize;
        const part = (a: number, b: number) => ({
          q: c.seq.q.subarray(a * d, b * d),
          k: c.seq.k.subarray(a * d, b * d),
          v: c.seq.v.subarray(a * d, b * d),
          seqLen: b - a,
          keyDim: d,
          valueDim: d,
        });
        const first = runOvq(part(0, half), config);
        setOvqCapacity(first.state, v.capacityAfterHalf);
        const rest = runOvq(
          part(half, o.seqLen),
          { ...config, capacity: v.capacityAfterHalf },
          first.state,
        );
        output = new Float64Array(o.seqLen * d);
        output.set(Float64Array.from(first.output), 0);
        output.set(Float64Array.from(rest.output), half * d);
        size = rest.state.size;
      }
      accs.push(recallAccuracy(output, c.factValues, c.queryAt, d));
      sizes.push(size);
    }
    const n = mean(sizes);
    const row: AblationRow = {
      axis: v.axis,
      variant: v.name,
      accuracy: mean(accs),
      perSeed: accs,
      dictionarySize: n,
      stateNumbers: n * (2 * o.dim + 1) + o.chunkSize * 2 * o.dim,
      implementation: OVQ_ENGINE,
    };
    rows.push(row);
    reporter.line(
      table.row([
        row.axis,
        row.variant,
        pct(row.accuracy),
        n.toFixed(0),
        si(row.stateNumbers),
        row.implementation,
      ]),
    );
  }
  const findings = ablationFindings(rows);
  reporter.line('What the ablations show:');
  for (const f of findings) reporter.line(`  ${f.text}`);
  return { label: 'OVQ ablations on untrained synthetic recall', options, rows, findings };
}
