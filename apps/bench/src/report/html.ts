// The self-contained HTML report: headline verdicts (each linked to the table rows it was computed
// from), every plot as inline SVG with a paragraph on what it shows and how to read it, the tables
// behind them, and the configuration folded away. No scripts, no external assets.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { rowId } from '../suites/headlines.js';
import type { SpeedRow } from '../suites/speed.js';
import { bytes, mib, pct, sci, si } from './format.js';
import type { BenchReport } from './json.js';
import { isRegimeResults, regimeHtml } from './regime.js';
import {
  type Bar,
  barPlot,
  escapeXml as esc,
  type Guide,
  linePlot,
  mixerColor,
  type Series,
} from './svg.js';

export type PlotSpec = { id: string; svg: string; caption: string };

const anchor = (id: string) => `row-${id.replace(/[^A-Za-z0-9]+/g, '-')}`;

/** Implementations of one mixer share its colour; the second and later ones are dashed. */
function implStyle(rows: { impl: string; mixer: string }[]) {
  const impls = [...new Set(rows.map((r) => r.impl))];
  return (impl: string) => {
    const mixer = impl.split('/')[0];
    const rank = impls.filter((i) => i.split('/')[0] === mixer).indexOf(impl);
    return { color: mixerColor(mixer), dash: rank > 0 ? (rank > 1 ? '2 3' : '7 4') : undefined };
  };
}

export function speedSeries(report: BenchReport): Series[] {
  const rows = report.speed?.rows.filter((r) => r.status === 'ok' && r.tokensPerSecond) ?? [];
  const keys = [...new Set(rows.map((r) => `${r.impl}|${r.mode}`))];
  const style = implStyle(rows);
  return keys.map((key) => {
    const [impl, mode] = key.split('|');
    const pts = rows.filter((r) => r.impl === impl && r.mode === mode);
    const s = style(impl);
    return {
      name: `${impl}${mode === 'forward' ? '' : ' (fwd+bwd)'}`,
      color: s.color,
      dash: mode === 'forward' ? s.dash : '1 3',
      points: pts.map((r) => ({
        x: r.T,
        y: r.tokensPerSecond!.median,
        lo: r.tokensPerSecond!.p20,
        hi: r.tokensPerSecond!.p80,
        label: `T=${r.T}: ${si(r.tokensPerSecond!.median)} tok/s [${si(r.tokensPerSecond!.p20)}–${si(r.tokensPerSecond!.p80)}]${r.noisy ? ' (noisy)' : ''}`,
      })),
    };
  });
}

/** Reference slopes through the first OVQ and softmax points: linear time is flat in tokens/s. */
export function speedGuides(report: BenchReport): Guide[] {
  const rows =
    report.speed?.rows.filter(
      (r) => r.status === 'ok' && r.tokensPerSecond && r.mode === 'forward',
    ) ?? [];
  if (!rows.length) return [];
  const Ts = rows.map((r) => r.T);
  const lo = Math.min(...Ts);
  const hi = Math.max(...Ts);
  const guides: Guide[] = [];
  const first = (mixer: string) =>
    rows.filter((r) => r.mixer === mixer).sort((a, b) => a.T - b.T)[0];
  const o = first('ovq');
  if (o) {
    const y = o.tokensPerSecond!.median;
    guides.push({
      name: 'linear time (tok/s constant)',
      points: [
        { x: lo, y },
        { x: hi, y },
      ],
    });
  }
  const s = first('softmax');
  if (s) {
    const y = s.tokensPerSecond!.median;
    guides.push({
      name: 'quadratic time (tok/s ∝ 1/T)',
      points: [
        { x: s.T, y },
        { x: hi, y: (y * s.T) / hi },
      ],
    });
  }
  return guides;
}

/** Per probed implementation: the most bytes its stream held beyond the baseline (KiB, log). */
export function memorySeries(report: BenchReport): Series[] {
  const rows = report.speed?.rows.filter((r) => r.memory) ?? [];
  const impls = [...new Set(rows.map((r) => r.impl))];
  const style = implStyle(rows);
  return impls.map((impl) => ({
    name: impl,
    ...style(impl),
    points: rows
      .filter((r) => r.impl === impl)
      .map((r) => ({
        x: r.T,
        y: r.memory!.held / 1024,
        label: `T=${r.T}: holds +${bytes(r.memory!.held)} (state ${si(r.stateNumbers)} numbers; RSS +${mib(r.memory!.growth)})`,
      })),
  }));
}

/** One plot per data set: test accuracy of each mixer's best setting within each state budget. */
export function recallPlots(
  report: BenchReport,
): { id: string; series: Series[]; guides: Guide[]; dataset: string }[] {
  const s = report.syntheticRecall;
  if (!s?.points?.length) return [];
  const datasets = [...new Set(s.points.map((p) => p.dataset ?? 'clustered'))];
  return datasets.map((dataset) => {
    const pts = s.points.filter((p) => (p.dataset ?? 'clustered') === dataset);
    const mixers = [...new Set(pts.map((p) => p.mixer))];
    const series = mixers.map((mixer) => ({
      name: mixer,
      color: mixerColor(mixer),
      points: pts
        .filter((p) => p.mixer === mixer)
        .sort((a, b) => (a.budget ?? a.stateNumbers) - (b.budget ?? b.stateNumbers))
        .map((p) => ({
          x: p.budget ?? p.stateNumbers,
          y: p.accuracy,
          label: `budget ${si(p.budget)}: ${p.setting} → ${pct(p.accuracy)} test (${pct(p.validation)} validation), ${si(p.stateNumbers)} numbers`,
        })),
    }));
    const ref = (s.references ?? []).find((r) => r.dataset === dataset);
    const xs = pts.map((p) => p.budget ?? p.stateNumbers);
    const guides = ref
      ? [
          {
            name: `full softmax ${pct(ref.accuracy)} (${si(ref.stateNumbers)} numbers)`,
            points: [
              { x: Math.min(...xs), y: ref.accuracy },
              { x: Math.max(...xs), y: ref.accuracy },
            ],
          },
        ]
      : [];
    return { id: `recall-${dataset}`, series, guides, dataset };
  });
}

/** Trained recall (when @ovq/train ran): accuracy against the mixer layer's state. */
function trainedRecallSeries(report: BenchReport): Series[] {
  if (report.recall?.status !== 'ok') return [];
  const points = report.recall.points;
  const keys = [...new Set(points.map((p) => `${p.task}|${p.mixer}`))];
  return keys.map((key) => {
    const [task, mixer] = key.split('|');
    return {
      name: `${task}: ${mixer}`,
      color: mixerColor(mixer),
      dash: task === 'mqar' ? undefined : '6 4',
      points: points
        .filter((p) => p.task === task && p.mixer === mixer)
        .sort((a, b) => a.stateNumbers - b.stateNumbers)
        .map((p) => ({
          x: p.stateNumbers,
          y: p.accuracy,
          label: `${p.setting}: ${pct(p.accuracy)}`,
        })),
    };
  });
}

export function ablationBars(report: BenchReport): Bar[] {
  return (report.ablate?.rows ?? []).map((r) => ({
    group: r.axis,
    label: r.variant,
    value: r.accuracy,
    highlight: r.axis === 'default',
  }));
}

const DATASET_TEXT: Record<string, string> = {
  clustered:
    'distractor keys repeat 64 directions and the 48 facts have novel keys — a farthest-point spawn rule sees the facts as outliers, so this data set suits OVQ',
  iid: 'every key is an independent random unit vector — facts look like any other token, so no spawn rule is favoured',
};

export function reportPlots(report: BenchReport): PlotSpec[] {
  const plots: PlotSpec[] = [];
  const speed = speedSeries(report);
  if (speed.length) {
    plots.push({
      id: 'speed',
      caption:
        'Throughput (tokens per second, log) against sequence length T (log); dots are medians, whiskers the 20th–80th percentile of the timed repeats. ' +
        'A mixer that takes linear time keeps its tokens/s flat (the grey "linear time" line, drawn through OVQ’s first point); quadratic attention falls along the "quadratic time" line (slope −1, through softmax’s first point). ' +
        'Colour is the mixer; a dashed line of the same colour is a second implementation of it (e.g. tfjs-wasm dense softmax). Compare implementations of one mixer by GFLOP/s in the table; across mixers compare tokens/s.',
      svg: linePlot({
        id: 'speed',
        title: 'Throughput vs sequence length (median, p20–p80)',
        xLabel: 'T (tokens)',
        yLabel: 'tokens/s',
        xLog: true,
        yLog: true,
        series: speed,
        guides: speedGuides(report),
      }),
    });
  }
  const memory = memorySeries(report);
  if (memory.length) {
    plots.push({
      id: 'memory',
      caption:
        'Bytes a stream keeps alive after streaming T tokens in 1024-token pieces (V8 heap + array buffers after a full GC, maximum over pieces, minus the baseline after a warm-up stream; log scale, values at or below 1 KiB drawn at 1 KiB). ' +
        'A KV cache grows in proportion to T; a constant-state mixer stays flat. The exact numbers and the RSS growth are in the speed table; the constant-memory verdict fits held bytes against tokens within the longest stream.',
      svg: linePlot({
        id: 'memory',
        title: 'Memory held by the stream (log)',
        xLabel: 'T (tokens)',
        yLabel: 'KiB held beyond the baseline',
        xLog: true,
        yLog: true,
        yFloor: 1,
        series: memory,
      }),
    });
  }
  for (const r of recallPlots(report)) {
    plots.push({
      id: r.id,
      caption:
        `Untrained recall on the "${r.dataset}" data set (${DATASET_TEXT[r.dataset] ?? ''}). ` +
        'x is the state budget (numbers kept between tokens, log); each dot is the test-split accuracy of that mixer’s best validation setting whose state fits the budget (+10%), so dots stacked at one x compare mixers at equal state. ' +
        'The grey line is full softmax with its unbounded KV cache. A mixer whose best setting stops growing with the budget (e.g. SWA, whose window cannot reach the facts) stays flat.',
      svg: linePlot({
        id: r.id,
        title: `Recall at matched state — ${r.dataset} keys (test split)`,
        xLabel: 'state budget (numbers kept, log)',
        yLabel: 'recall accuracy',
        xLog: true,
        yLog: false,
        series: r.series,
        guides: r.guides,
      }),
    });
  }
  const trained = trainedRecallSeries(report);
  if (trained.length) {
    plots.push({
      id: 'recall-trained',
      caption:
        'Trained recall (@ovq/train, SWA + mixer hybrid): held-out accuracy, best over the learning-rate sweep, against the mixer layer’s state size (log). Solid: MQAR; dashed: positional recall.',
      svg: linePlot({
        id: 'recall-trained',
        title: 'Recall accuracy vs state size (trained)',
        xLabel: 'state size (numbers kept, log)',
        yLabel: 'recall accuracy',
        xLog: true,
        yLog: false,
        series: trained,
      }),
    });
  }
  const bars = ablationBars(report);
  if (bars.length) {
    plots.push({
      id: 'ablate',
      caption:
        'OVQ’s own axes on the clustered recall sequence, mean accuracy over seeds; the outlined bar is the default (farthest-point spawn, saturating growth, mean update, dot read). ' +
        'Each other bar changes one axis. The findings list below says, per axis, which setting won, by how much and whether the margin is beyond the seed-to-seed noise.',
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
      caption:
        'Byte-level LM loss by position on held-out documents longer than the training length: a mixer that uses long context keeps its loss falling past the training length.',
      svg: linePlot({
        id: 'lm',
        title: 'LM loss by position',
        xLabel: 'position',
        yLabel: 'loss',
        xLog: true,
        yLog: false,
        series: report.lm.curves.map((c) => ({
          name: c.mixer,
          color: mixerColor(c.mixer),
          points: c.positions.map((x, i) => ({ x, y: c.loss[i] })),
        })),
      }),
    });
  }
  return plots;
}

function table(head: string[], rows: string[][], ids?: (string | undefined)[]): string {
  return `<table><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map(
      (r, i) =>
        `<tr${ids?.[i] ? ` id="${ids[i]}"` : ''}>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`,
    )
    .join('')}</tbody></table>`;
}

/** Tables of the arrays of flat objects inside an attached JSON file (its own schema unknown). */
function attachedTables(data: unknown): string {
  const out: string[] = [];
  const visit = (value: unknown, path: string, depth: number) => {
    if (depth > 2 || value === null || typeof value !== 'object') return;
    if (Array.isArray(value)) {
      const objs = value.filter((v) => v && typeof v === 'object' && !Array.isArray(v)) as Record<
        string,
        unknown
      >[];
      if (objs.length && objs.length === value.length) {
        const cols = [
          ...new Set(
            objs.flatMap((o) =>
              Object.keys(o).filter((k) => ['string', 'number', 'boolean'].includes(typeof o[k])),
            ),
          ),
        ].slice(0, 12);
        const cell = (v: unknown) =>
          typeof v === 'number'
            ? Number.isInteger(v)
              ? String(v)
              : v.toPrecision(4)
            : String(v ?? '');
        out.push(`<p class="meta">${esc(path || 'rows')}</p>`);
        out.push(
          table(
            cols,
            objs.slice(0, 200).map((o) => cols.map((c) => cell(o[c]))),
          ),
        );
      }
      return;
    }
    for (const [k, v] of Object.entries(value)) visit(v, path ? `${path}.${k}` : k, depth + 1);
  };
  visit(data, '', 0);
  return out.join('\n');
}

function verdictClass(v: string): string {
  return v === 'held' ? 'held' : v === 'not held' ? 'failed' : 'unclear';
}

export function renderHtml(report: BenchReport): string {
  const m = report.machine;
  const parts: string[] = [];
  parts.push(`<h1>ovq-bench — ${esc(report.suite)}</h1>`);
  const load = report.load;
  parts.push(
    `<p class="meta">${esc(report.createdAt)} · commit ${esc(report.git.commit ?? 'unknown')}${report.git.dirty ? ' (with uncommitted changes)' : ''} · ${esc(m.cpuModel)} ×${m.cpuCount} · ${(m.totalMemoryBytes / 2 ** 30).toFixed(0)} GiB · Node ${esc(m.node)} · ${report.wallSeconds.toFixed(0)} s wall` +
      (load
        ? ` · machine load (1-min average) ${load.start.toFixed(1)} at the start, ${load.end.toFixed(1)} at the end, on ${m.cpuCount} cores${load.end > m.cpuCount * 0.75 || load.start > m.cpuCount * 0.75 ? ' — the machine was busy: timings are slower and noisier than on an idle one' : ''}`
        : '') +
      '</p>',
  );
  if (report.headlines?.length) {
    parts.push('<h2>Headline claims</h2>');
    parts.push(
      '<p>Each verdict is computed from the measured rows it links to. "inconclusive (noisy)" means the rows it rests on were too noisy (timing spread p80/p20 above 1.3, or a fit whose 2σ band straddles the threshold) to say "not held".</p>',
    );
    parts.push('<ul class="headlines">');
    for (const h of report.headlines) {
      const links = (h.rows ?? []).map((r) => `<a href="#${anchor(r)}">${esc(r)}</a>`).join(', ');
      parts.push(
        `<li class="${verdictClass(h.verdict)}"><b>${esc(h.claim)}</b>: <span class="verdict">${esc(h.verdict)}</span>. ${esc(h.evidence)}${links ? `<br><small>from: ${links}</small>` : ''}</li>`,
      );
    }
    parts.push('</ul>');
  }
  const plots = reportPlots(report);
  if (plots.length) {
    parts.push('<h2>Plots</h2>');
    for (const p of plots)
      parts.push(`<figure>${p.svg}<figcaption>${esc(p.caption)}</figcaption></figure>`);
  }
  if (report.syntheticRecall) {
    const s = report.syntheticRecall;
    const o = s.options;
    parts.push(`<h2>Recall at matched state: ${esc(s.label)}</h2>`);
    if (o?.validationSeeds) {
      parts.push(
        `<p>${s.candidates} settings evaluated; each mixer’s size and knobs (β for the softmax-read mixers, decay for decay-linear and GDN, the feature map for linear, decay-linear and GDN) chosen on validation seeds ${o.validationSeeds.join(', ')} and reported on test seeds ${o.testSeeds.join(', ')} (${o.sequence.pairs} facts each, so one test point is ${(100 / (o.sequence.pairs * o.testSeeds.length)).toFixed(1)} percentage points). ` +
          'Per budget: who wins, by how much, and OVQ against the best other mixer with a 2σ binomial band.</p>',
      );
    }
    const comps = s.comparisons ?? [];
    if (comps.length) {
      parts.push(
        table(
          [
            'data set',
            'budget',
            'winner',
            'margin over runner-up',
            'OVQ − best other',
            'ranking (test accuracy, chosen setting)',
          ],
          comps.map((c) => [
            c.dataset,
            si(c.budget),
            c.winner,
            `${(100 * c.margin).toFixed(1)} pts`,
            c.ovqGap === null
              ? '—'
              : `${c.ovqGap >= 0 ? '+' : ''}${(100 * c.ovqGap).toFixed(1)} ± ${(200 * c.ovqGapSe!).toFixed(1)} pts vs ${c.bestOther}`,
            c.ranking
              .map((r) => `${r.mixer} ${pct(r.accuracy)} (${r.setting}, ${si(r.stateNumbers)})`)
              .join(' · '),
          ]),
          comps.map((c) => anchor(`${c.dataset} ≤${si(c.budget)}`)),
        ),
      );
    }
    parts.push(
      table(
        [
          'data set',
          'budget',
          'mixer',
          'chosen setting',
          'state (numbers)',
          'validation',
          'test',
          'test per seed',
          'implementation',
        ],
        [
          ...s.points.map((p) => [
            p.dataset ?? '',
            si(p.budget),
            p.mixer,
            p.setting,
            si(p.stateNumbers),
            pct(p.validation),
            pct(p.accuracy),
            p.perSeed.map((x) => pct(x)).join(' '),
            p.implementation,
          ]),
          ...(s.references ?? []).map((p) => [
            p.dataset ?? '',
            'unbounded',
            p.mixer,
            p.setting,
            si(p.stateNumbers),
            pct(p.validation),
            pct(p.accuracy),
            p.perSeed.map((x) => pct(x)).join(' '),
            p.implementation,
          ]),
          ...s.skipped.map((k) => ['', '', k.mixer, 'failed', '', '', '', '', k.reason]),
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
    if (report.ablate.findings?.length) {
      parts.push('<p>What the ablations show:</p><ul>');
      for (const f of report.ablate.findings) parts.push(`<li>${esc(f.text)}</li>`);
      parts.push('</ul>');
    }
    parts.push(
      table(
        [
          'axis',
          'variant',
          'recall',
          'per seed',
          'dictionary size',
          'state (numbers)',
          'implementation',
        ],
        report.ablate.rows.map((r) => [
          r.axis,
          r.variant,
          pct(r.accuracy),
          r.perSeed.map((x) => pct(x)).join(' '),
          r.dictionarySize.toFixed(0),
          si(r.stateNumbers),
          r.implementation,
        ]),
      ),
    );
  }
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
    const rows = report.speed.rows;
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
          'p80/p20',
          'load',
          'state (numbers)',
          'held growth',
          'RSS growth',
          'note',
        ],
        rows.map((r: SpeedRow) => [
          r.impl,
          r.mode,
          String(r.T),
          si(r.tokensPerSecond?.median),
          si(r.tokensPerSecond?.p20),
          si(r.tokensPerSecond?.p80),
          r.gflops ? r.gflops.median.toFixed(2) : '—',
          r.spread ? `${r.spread.toFixed(2)}${r.noisy ? ' noisy' : ''}` : '',
          r.load ? `${r.load.before.toFixed(1)}→${r.load.after.toFixed(1)}` : '',
          si(r.stateNumbers),
          r.memory ? bytes(r.memory.held) : '',
          r.memory ? mib(r.memory.growth) : '',
          r.status === 'ok' ? (r.memoryError ?? '') : `${r.status}: ${r.reason ?? ''}`,
        ]),
        rows.map((r) => anchor(rowId(r))),
      ),
    );
  }
  if (report.lm?.status === 'skipped')
    parts.push(`<h2>LM loss by position</h2><p>skipped: ${esc(report.lm.reason)}</p>`);
  for (const a of report.attachments ?? []) {
    parts.push(`<h2>${esc(a.title)}</h2>`);
    parts.push(`<p class="meta">from ${esc(a.path)}</p>`);
    if (isRegimeResults(a.data)) parts.push(regimeHtml(a.data, table));
    parts.push(attachedTables(a.data));
    parts.push(
      `<details><summary>raw JSON</summary><pre>${esc(JSON.stringify(a.data, null, 1))}</pre></details>`,
    );
  }
  parts.push(
    `<h2>Configuration</h2><details><summary>config, package versions and WebGPU adapters (JSON)</summary><pre>${esc(JSON.stringify({ command: report.command, config: report.config, versions: report.versions, adapters: report.adapters }))}</pre></details>`,
  );
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ovq-bench ${esc(report.suite)}</title>
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1340px;color:#222;padding:0 16px}
table{border-collapse:collapse;margin:8px 0 20px;font-size:13px}td,th{border:1px solid #ddd;padding:3px 7px;text-align:left}
th{background:#f4f4f4}.meta{color:#666}figure{margin:0 0 18px}figcaption{max-width:800px;color:#333}
svg .title{font-weight:600;font-size:14px}svg .tick,svg .legend-text{font-size:11px;fill:#444;stroke:none}svg .label{font-size:12px;fill:#333;stroke:none}
li.held .verdict{color:#176c2b;font-weight:600}li.failed .verdict{color:#a01515;font-weight:600}li.unclear .verdict{color:#8a6d00;font-weight:600}
tr:target{background:#fff6c8}pre{background:#f7f7f7;padding:8px;overflow:auto;font-size:12px;white-space:pre-wrap;word-break:break-all}
</style></head><body>
${parts.join('\n')}
</body></html>
`;
}

export function writeHtml(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, renderHtml(report));
}
