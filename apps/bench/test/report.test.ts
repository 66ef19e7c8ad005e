import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { silentReporter } from '../src/report/format.js';
import { renderHtml, writeHtml } from '../src/report/html.js';
import { type BenchReport, REPORT_SCHEMA, readReport, writeJson } from '../src/report/json.js';
import { isRegimeResults, regimeReport } from '../src/report/regime.js';
import { runSuite } from '../src/run.js';
import { browserMissing, renderPlots } from './browser.js';
import { FIXTURE, fixtureReport } from './fixture.js';

const out = mkdtempSync(join(tmpdir(), 'ovq-bench-test-'));

// One tiny real quick run shared by the tests below (seconds, not minutes).
const quick = runSuite(
  {
    suite: 'quick',
    out,
    speed: { Ts: [128, 256], repeats: 2, dims: { keyDim: 8, valueDim: 8 } },
    seeds: [1],
    sequence: { seqLen: 512, pairs: 8, distractorClusters: 16 },
    impl: [],
    command: ['ovq-bench', 'quick', '(test)'],
  },
  silentReporter,
);

describe('JSON results file', () => {
  it('records machine, versions, git commit, config and every measurement', async () => {
    const { json } = await quick;
    const r = readReport(json) as BenchReport;
    expect(r.schema).toBe(REPORT_SCHEMA);
    expect(r.suite).toBe('quick');
    expect(r.machine.cpuCount).toBeGreaterThan(0);
    expect(r.machine.cpuModel.length).toBeGreaterThan(0);
    expect(r.machine.node).toBe(process.versions.node);
    expect(r.versions['@ovq/core']).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.versions['@ovq/bench']).toMatch(/^\d+\.\d+\.\d+/);
    expect(r.git.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(r.config).toHaveProperty('speed');
    expect(r.config).toHaveProperty('syntheticRecall');
    expect(r.config).toHaveProperty('ablate');
    expect(Array.isArray(r.adapters)).toBe(true);
    expect(r.skipped.length).toBeGreaterThan(0);
    for (const s of r.skipped) expect(s.reason).toBeTruthy();
    const ok = r.speed!.rows.filter((row) => row.status === 'ok');
    expect(ok.length).toBeGreaterThan(0);
    for (const row of ok) {
      expect(row.timing!.samples.length).toBe(2);
      expect(row.tokensPerSecond!.p20).toBeLessThanOrEqual(row.tokensPerSecond!.p80);
      expect(row.stateNumbers).toBeGreaterThan(0);
    }
    expect(r.speed!.checks.every((c) => c.ok)).toBe(true);
    expect(r.syntheticRecall!.label).toMatch(/untrained/);
    expect(r.recall).toMatchObject({ status: 'skipped' });
    expect(r.ablate!.rows.length).toBeGreaterThanOrEqual(9);
    expect(r.headlines!.map((h) => h.claim)).toEqual([
      'OVQ scales linearly in T',
      'OVQ keeps constant memory',
      'OVQ is faster than softmax attention at long T (the faster of our softmax and tfjs-wasm dense)',
      'At equal state, OVQ recalls better than every other bounded-state mixer',
    ]);
    // Two lengths cannot support a scaling fit: said so, not guessed.
    expect(r.headlines![0].verdict).toBe('not measured');
    expect(r.load!.start).toBeGreaterThanOrEqual(0);
    const rowsWithLoad = ok.filter((row) => row.load && typeof row.noisy === 'boolean');
    expect(rowsWithLoad).toHaveLength(ok.length);
    // Matched state: every mixer at every budget it fits, on both data sets.
    const s = r.syntheticRecall!;
    expect(new Set(s.points.map((p) => p.dataset))).toEqual(new Set(['clustered', 'iid']));
    for (const m of ['ovq', 'kvm', 'vq', 'swa', 'linear', 'decay-linear', 'gated-deltanet'])
      expect(
        s.points.some((p) => p.mixer === m),
        m,
      ).toBe(true);
    for (const p of s.points) expect(p.stateNumbers).toBeLessThanOrEqual(1.1 * p.budget!);
    expect(s.comparisons.length).toBe(2 * s.options.budgets.length);
    expect(r.ablate!.findings.length).toBeGreaterThan(0);
  });

  it('writes non-finite numbers as strings instead of invalid JSON', () => {
    const report = fixtureReport();
    report.speed!.checks[0].forwardRms = Number.POSITIVE_INFINITY;
    const path = join(out, 'inf.json');
    writeJson(path, report);
    expect(JSON.parse(readFileSync(path, 'utf8')).speed.checks[0].forwardRms).toBe('Infinity');
  });
});

describe('HTML report', () => {
  it('is self-contained: inline SVG, no scripts or external assets', () => {
    const html = renderHtml(fixtureReport());
    expect(html).not.toMatch(/<script|<link|src=|href="http/);
    expect(html.match(/<svg class="plot"/g)).toHaveLength(5);
    // One explanatory paragraph per plot, the config folded away.
    expect(html.match(/<figcaption>/g)).toHaveLength(5);
    expect(html).toMatch(/<details><summary>config/);
    // The speed plot carries the linear- and quadratic-time reference lines.
    expect(html).toMatch(/data-guide="linear time/);
    expect(html).toMatch(/data-guide="quadratic time/);
  });

  it('shows other tools’ results when attached', () => {
    const report = fixtureReport();
    report.attachments = [
      {
        title: 'Training speed (ovq-bench train-speed)',
        path: 'bench-results/train-speed.json',
        data: { rows: [{ mixers: 'swa,ovq', tokensPerSecond: 2100, mfu: 0.27 }] },
      },
    ];
    const html = renderHtml(report);
    expect(html).toMatch(/<h2>Training speed \(ovq-bench train-speed\)<\/h2>/);
    expect(html).toMatch(/<td>swa,ovq<\/td><td>2100<\/td><td>0\.2700<\/td>/);
  });

  it.skipIf(browserMissing())(
    'renders every plot with the expected series and marks (fixture)',
    async () => {
      const path = join(out, 'fixture.html');
      writeHtml(path, fixtureReport());
      const plots = await renderPlots(path);
      const byId = Object.fromEntries(plots.map((p) => [p.id, p]));
      expect(Object.keys(byId).sort()).toEqual([
        'ablate',
        'memory',
        'recall-clustered',
        'recall-iid',
        'speed',
      ]);
      for (const p of plots) {
        expect(p.width * p.height, p.id).toBeGreaterThan(0);
        expect(p.contentWidth * p.contentHeight, p.id).toBeGreaterThan(0);
        expect(p.visibleMarks, p.id).toBe(p.marks);
      }
      const nT = FIXTURE.Ts.length;
      // One series per implementation and mode; the skipped T=16384 row draws nothing.
      expect(byId.speed.series).toBe(FIXTURE.impls.length + FIXTURE.backward.length);
      expect(byId.speed.seriesMarks).toEqual(
        Array(FIXTURE.impls.length + FIXTURE.backward.length).fill(nT),
      );
      // One series per probed implementation (bytes held, log axis: OVQ's ~2 KiB is visible).
      expect(byId.memory.series).toBe(FIXTURE.memory.length);
      expect(byId.memory.marks).toBe(FIXTURE.memory.length * nT);
      for (const id of ['recall-clustered', 'recall-iid'])
        expect(byId[id].seriesMarks).toEqual(
          FIXTURE.recallMixers.map(() => FIXTURE.recallBudgets.length),
        );
      expect(byId.ablate.marks).toBe(FIXTURE.ablations);
    },
  );

  it.skipIf(browserMissing())('renders the plots of a real quick run', async () => {
    const { html, report } = await quick;
    const plots = await renderPlots(html);
    // Plus whatever the attached trainer results draw (apps/trainer/results/regime*.json).
    const attached = (report.attachments ?? [])
      .filter((a) => isRegimeResults(a.data))
      .flatMap((a) => regimeReport(a.data).plots.map((p) => p.id));
    expect(plots.map((p) => p.id).sort()).toEqual(
      ['ablate', 'recall-clustered', 'recall-iid', 'speed', ...attached].sort(),
    );
    for (const p of plots) {
      expect(p.width * p.height, p.id).toBeGreaterThan(0);
      expect(p.series, p.id).toBeGreaterThan(0);
      expect(p.visibleMarks, p.id).toBe(p.marks);
    }
    const speedSeries = new Set(
      report.speed!.rows.filter((r) => r.status === 'ok').map((r) => `${r.impl} ${r.mode}`),
    );
    expect(plots.find((p) => p.id === 'speed')!.series).toBe(speedSeries.size);
  });
});
