// `ovq-bench compare a.json b.json`: ratios between two runs (b relative to a) on every
// measurement both contain, for performance work (`--base` prints the same after a run).
import { bytes, pct, si, TextTable } from './report/format.js';
import type { BenchReport } from './report/json.js';

export type CompareRow = {
  kind: 'speed' | 'memory' | 'recall' | 'ablate' | 'check';
  key: string;
  a: number | null;
  b: number | null;
  /** b / a for rates and sizes; b − a for accuracies; null when either side is missing. */
  ratio: number | null;
  note?: string;
};

const ratio = (a: number | null | undefined, b: number | null | undefined) =>
  a === null || a === undefined || b === null || b === undefined || a === 0 ? null : b / a;

export function compareReports(a: BenchReport, b: BenchReport): CompareRow[] {
  const rows: CompareRow[] = [];
  const speedKey = (r: { impl: string; mode: string; T: number }) => `${r.impl} ${r.mode} T=${r.T}`;
  const bSpeed = new Map((b.speed?.rows ?? []).map((r) => [speedKey(r), r]));
  for (const ra of a.speed?.rows ?? []) {
    const rb = bSpeed.get(speedKey(ra));
    if (!rb) continue;
    const ta = ra.tokensPerSecond?.median ?? null;
    const tb = rb.tokensPerSecond?.median ?? null;
    rows.push({
      kind: 'speed',
      key: speedKey(ra),
      a: ta,
      b: tb,
      ratio: ratio(ta, tb),
      note: ra.status !== 'ok' || rb.status !== 'ok' ? `${ra.status} → ${rb.status}` : undefined,
    });
    if (ra.memory && rb.memory) {
      // Held bytes: the exact accounting (RSS growth is noisier; both stay in the JSON).
      rows.push({
        kind: 'memory',
        key: `${ra.impl} T=${ra.T} held`,
        a: ra.memory.held,
        b: rb.memory.held,
        ratio: ratio(ra.memory.held, rb.memory.held),
      });
    }
  }
  const bChecks = new Map((b.speed?.checks ?? []).map((c) => [c.impl, c]));
  for (const ca of a.speed?.checks ?? []) {
    const cb = bChecks.get(ca.impl);
    if (cb && cb.ok !== ca.ok) {
      rows.push({
        kind: 'check',
        key: ca.impl,
        a: ca.forwardRms,
        b: cb.forwardRms,
        ratio: null,
        note: `${ca.ok ? 'ok' : 'FAILED'} → ${cb.ok ? 'ok' : 'FAILED'}`,
      });
    }
  }
  // Matched-state points compare per (data set, budget, mixer); the chosen setting may differ.
  const recallKey = (p: { mixer: string; setting: string; dataset?: string; budget?: number }) =>
    p.budget === undefined ? `${p.mixer} ${p.setting}` : `${p.dataset} ≤${p.budget} ${p.mixer}`;
  const bRecall = new Map((b.syntheticRecall?.points ?? []).map((p) => [recallKey(p), p]));
  for (const pa of a.syntheticRecall?.points ?? []) {
    const pb = bRecall.get(recallKey(pa));
    if (pb)
      rows.push({
        kind: 'recall',
        key: recallKey(pa),
        a: pa.accuracy,
        b: pb.accuracy,
        ratio: pb.accuracy - pa.accuracy,
      });
  }
  const bAblate = new Map((b.ablate?.rows ?? []).map((r) => [`${r.axis} ${r.variant}`, r]));
  for (const ra of a.ablate?.rows ?? []) {
    const rb = bAblate.get(`${ra.axis} ${ra.variant}`);
    if (rb)
      rows.push({
        kind: 'ablate',
        key: `${ra.axis} ${ra.variant}`,
        a: ra.accuracy,
        b: rb.accuracy,
        ratio: rb.accuracy - ra.accuracy,
      });
  }
  return rows;
}

export function formatComparison(rows: CompareRow[], aName: string, bName: string): string {
  const t = new TextTable([
    { title: 'what', width: 8 },
    { title: 'measurement', width: 46 },
    { title: 'a', width: 10, align: 'right' },
    { title: 'b', width: 10, align: 'right' },
    { title: 'b/a (Δ for recall)', width: 18, align: 'right' },
  ]);
  const lines = [`a = ${aName}`, `b = ${bName}`, t.header()];
  for (const r of rows) {
    const accuracy = r.kind === 'recall' || r.kind === 'ablate';
    const v = (x: number | null) => (r.kind === 'memory' ? bytes(x) : accuracy ? pct(x) : si(x));
    const rel =
      r.ratio === null
        ? (r.note ?? '—')
        : accuracy
          ? `${r.ratio >= 0 ? '+' : ''}${(100 * r.ratio).toFixed(1)} pts`
          : `${r.ratio.toFixed(3)}×`;
    lines.push(t.row([r.kind, r.key, v(r.a), v(r.b), rel]));
  }
  if (rows.length === 0) lines.push('(no measurement appears in both files)');
  return lines.join('\n');
}
