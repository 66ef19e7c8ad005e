// The self-contained HTML report: headline verdicts, the checks, every plot as inline SVG and the
// tables behind them. No scripts, no external assets: it opens from disk or as a CI artifact.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { bytes, mib, pct, sci, si } from './format.js';
import type { BenchReport } from './json.js';
import { type Bar, barPlot, colorFor, escapeXml as esc, linePlot, type Series } from './svg.js';

export type PlotSpec = { id: string; svg: string };

export function speedSeries(report: BenchReport): Series[] {
  const rows = report.speed?.rows.filter((r) => r.status === 'ok' && r.tokensPerSecond) ?? [];
  const keys = [...new Set(rows.map((r) => `${r.impl}|${r.mode}`))];
  const impls = [...new Set(rows.map((r) => r.impl))];
  return keys.map((key) => {
    const [impl, mode] = key.split('|');
    const pts = rows.filter((r) => r.impl === impl && r.mode === mode);
    return {
      name: `${impl}${mode === 'forward' ? '' : ' (fwd+bwd)'}`,
      dashed: mode !== 'forward',
      color: colorFor(impls.indexOf(impl)),
      points: pts.map((r) => ({
        x: r.T,
        y: r.tokensPerSecond!.median,
        lo: r.tokensPerSecond!.p20,
        hi: r.tokensPerSecond!.p80,
        label: `T=${r.T}: ${si(r.tokensPerSecond!.median)} tok/s [${si(r.tokensPerSecond!.p20)}–${si(r.tokensPerSecond!.p80)}]`,
      })),
    };
  });
}

/** Per implementation: bytes the stream holds (solid) and RSS growth (dashed), in MiB. */
export function memorySeries(report: BenchReport): Series[] {
  const rows = report.speed?.rows.filter((r) => r.memory) ?? [];
  const impls = [...new Set(rows.map((r) => r.impl))];
  return impls.flatMap((impl, i) => {
    const mine = rows.filter((r) => r.impl === impl);
    const color = colorFor(i);
    return [
      {
        name: `${impl} held`,
        color,
        points: mine.map((r) => ({
          x: r.T,
          y: r.memory!.held / 2 ** 20,
          label: `T=${r.T}: holds +${bytes(r.memory!.held)} (state ${si(r.stateNumbers)} numbers)`,
        })),
      },
      {
        name: `${impl} RSS`,
        color,
        dashed: true,
        points: mine.map((r) => ({
          x: r.T,
          y: r.memory!.growth / 2 ** 20,
          label: `T=${r.T}: RSS +${mib(r.memory!.growth)}`,
        })),
      },
    ];
  });
}

/** Trained recall when @ovq/train ran, else the untrained synthetic comparison. */
export function recallSeries(report: BenchReport): { series: Series[]; title: string } {
  const trained = report.recall?.status === 'ok' ? report.recall.points : null;
  const points = trained ?? report.syntheticRecall?.points ?? [];
  const keyOf = (p: (typeof points)[number]) =>
    'task' in p ? `${(p as { task: string }).task}: ${p.mixer}` : p.mixer;
  const series = [...new Set(points.map(keyOf))].map((name) => ({
    name,
    points: points
      .filter((p) => keyOf(p) === name)
      .sort((a, b) => a.stateNumbers - b.stateNumbers)
      .map((p) => ({
        x: p.stateNumbers,
        y: p.accuracy,
        label: `${p.setting}: ${pct(p.accuracy)} with ${si(p.stateNumbers)} numbers`,
      })),
  }));
  const title = trained
    ? 'Recall accuracy vs state size (trained, best over learning rates)'
    : 'Recall vs state size — untrained synthetic sequence (keys as given)';
  return { series, title };
}

export function ablationBars(report: BenchReport): Bar[] {
  return (report.ablate?.rows ?? []).map((r) => ({
    group: r.axis,
    label: r.variant,
    value: r.accuracy,
    highlight: r.axis === 'default',
  }));
}

export function reportPlots(report: BenchReport): PlotSpec[] {
  const plots: PlotSpec[] = [];
  const speed = speedSeries(report);
  if (speed.length) {
    plots.push({
      id: 'speed',
      svg: linePlot({
        id: 'speed',
        title: 'Throughput vs sequence length (median, p20–p80)',
        xLabel: 'T (tokens)',
        yLabel: 'tokens/s',
        xLog: true,
        yLog: true,
        series: speed,
      }),
    });
  }
  const memory = memorySeries(report);
  if (memory.length) {
    plots.push({
      id: 'memory',
      svg: linePlot({
        id: 'memory',
        title: 'Memory added by streaming T tokens',
        xLabel: 'T (tokens)',
        yLabel: 'MiB added by the stream',
        xLog: true,
        yLog: false,
        series: memory,
      }),
    });
  }
  const recall = recallSeries(report);
  if (recall.series.length) {
    plots.push({
      id: 'recall',
      svg: linePlot({
        id: 'recall',
        title: recall.title,
        xLabel: 'state size (numbers kept, log)',
        yLabel: 'recall accuracy',
        xLog: true,
        yLog: false,
        series: recall.series,
      }),
    });
  }
  const bars = ablationBars(report);
  if (bars.length) {
    plots.push({
      id: 'ablate',
      svg: barPlot({
        id: 'ablate',
        title: 'OVQ ablations: recall accuracy',
        xLabel: 'recall accuracy',
        bars,
        max: 1,
      }),
    });
  }
  if (report.lm?.status === 'ok' && report.lm.curves.length) {
    plots.push({
      id: 'lm',
      svg: linePlot({
        id: 'lm',
        title: 'LM loss by position',
        xLabel: 'position',
        yLabel: 'loss',
        xLog: true,
        yLog: false,
        series: report.lm.curves.map((c) => ({
          name: c.mixer,
          points: c.positions.map((x, i) => ({ x, y: c.loss[i] })),
        })),
      }),
    });
  }
  return plots;
}

function table(head: string[], rows: string[][]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

export function renderHtml(report: BenchReport): string {
  const m = report.machine;
  const parts: string[] = [];
  parts.push(`<h1>ovq-bench — ${esc(report.suite)}</h1>`);
  parts.push(
    `<p class="meta">${esc(report.createdAt)} · commit ${esc(report.git.commit ?? 'unknown')}${report.git.dirty ? ' (with uncommitted changes)' : ''} · ${esc(m.cpuModel)} ×${m.cpuCount} · ${(m.totalMemoryBytes / 2 ** 30).toFixed(0)} GiB · Node ${esc(m.node)} · ${report.wallSeconds.toFixed(0)} s wall</p>`,
  );
  if (report.headlines?.length) {
    parts.push('<h2>Headline claims</h2><ul class="headlines">');
    for (const h of report.headlines) {
      const v = h.held === null ? 'not measured' : h.held ? 'held' : 'did not hold';
      parts.push(
        `<li class="${h.held ? 'held' : 'failed'}"><b>${esc(h.claim)}</b>: ${v}. ${esc(h.evidence)}</li>`,
      );
    }
    parts.push('</ul>');
  }
  const plots = reportPlots(report);
  if (plots.length)
    parts.push(
      `<h2>Plots</h2><div class="plots">${plots.map((p) => `<figure>${p.svg}</figure>`).join('')}</div>`,
    );
  if (report.speed) {
    parts.push('<h2>Correctness checks (run before any number)</h2>');
    parts.push(
      table(
        ['implementation', 'result', 'forward RMS ratio', 'backward RMS ratio', 'against'],
        [
          ...report.speed.checks.map((c) => [
            c.impl,
            c.ok ? 'ok' : 'FAILED',
            sci(c.forwardRms),
            sci(c.backwardRms),
            c.error ? `threw: ${c.error}` : c.detail,
          ]),
          ...report.skipped.map((s) => [s.name, 'skipped', '', '', s.reason]),
        ],
      ),
    );
    parts.push('<h2>Speed and memory</h2>');
    parts.push(
      table(
        [
          'implementation',
          'mode',
          'T',
          'tokens/s median',
          'p20',
          'p80',
          'GFLOP/s',
          'state (numbers)',
          'held growth',
          'RSS growth',
          'note',
        ],
        report.speed.rows.map((r) => [
          r.impl,
          r.mode,
          String(r.T),
          si(r.tokensPerSecond?.median),
          si(r.tokensPerSecond?.p20),
          si(r.tokensPerSecond?.p80),
          r.gflops ? r.gflops.median.toFixed(2) : '—',
          si(r.stateNumbers),
          r.memory ? bytes(r.memory.held) : '',
          r.memory ? mib(r.memory.growth) : '',
          r.status === 'ok' ? (r.memoryError ?? '') : `${r.status}: ${r.reason ?? ''}`,
        ]),
      ),
    );
  }
  if (report.syntheticRecall) {
    const s = report.syntheticRecall;
    parts.push(`<h2>Recall: ${esc(s.label)}</h2>`);
    parts.push(
      table(
        ['mixer', 'setting', 'state (numbers)', 'recall', 'per seed', 'implementation'],
        [
          ...s.points.map((p) => [
            p.mixer,
            p.setting,
            si(p.stateNumbers),
            pct(p.accuracy),
            p.perSeed.map((x) => pct(x)).join(' '),
            p.implementation,
          ]),
          ...s.skipped.map((k) => [k.mixer, 'skipped', '', '', '', k.reason]),
        ],
      ),
    );
  }
  if (report.recall) {
    parts.push('<h2>Recall (trained, @ovq/train)</h2>');
    if (report.recall.status === 'skipped')
      parts.push(`<p>skipped: ${esc(report.recall.reason)}</p>`);
  }
  if (report.ablate) {
    parts.push(`<h2>${esc(report.ablate.label)}</h2>`);
    parts.push(
      table(
        ['axis', 'variant', 'recall', 'dictionary size', 'state (numbers)', 'implementation'],
        report.ablate.rows.map((r) => [
          r.axis,
          r.variant,
          pct(r.accuracy),
          r.dictionarySize.toFixed(0),
          si(r.stateNumbers),
          r.implementation,
        ]),
      ),
    );
  }
  if (report.lm?.status === 'skipped')
    parts.push(`<h2>LM loss by position</h2><p>skipped: ${esc(report.lm.reason)}</p>`);
  parts.push(
    `<h2>Configuration</h2><pre>${esc(JSON.stringify({ config: report.config, versions: report.versions, adapters: report.adapters }, null, 2))}</pre>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ovq-bench ${esc(report.suite)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1340px;color:#222;padding:0 16px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f4f4f4}.meta{color:#666}.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0}
svg .title{font-weight:600;font-size:14px}svg .tick,svg .legend-text{font-size:11px;fill:#444;stroke:none}svg .label{font-size:12px;fill:#333;stroke:none}
li.held b{color:#176c2b}li.failed b{color:#a01515}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px}
</style></head><body>
${parts.join('\n')}
</body></html>
`;
}

export function writeHtml(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderHtml(report));
}
