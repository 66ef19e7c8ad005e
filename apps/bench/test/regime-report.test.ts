// The regime section of the HTML report from ovq-results/1 files: each plot with the right series
// and points (a synthetic full file), missing points named and left out rather than drawn as 0,
// and the partial file the sweep has written so far.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pct } from '../src/report/format.js';
import { renderHtml } from '../src/report/html.js';
import { patternMixer, type RegimeRow, regimeReport } from '../src/report/regime.js';
import { MIXER_COLORS } from '../src/report/svg.js';
import { fixtureReport } from './fixture.js';
import { accuracy, PARTIAL_REGIME, REGIME_FIXTURE, regimeFixture } from './regime-fixture.js';

const PLOTS = [
  'regime-mqar-length',
  'regime-mqar-state',
  'regime-niah-length',
  'regime-niah-state',
  'regime-niah',
  'regime-loss',
];

function html(data: unknown): string {
  const report = fixtureReport();
  report.attachments = [{ title: 'OVQ in its own regime', path: 'regime.json', data }];
  return renderHtml(report);
}

/** The SVG of plot `id` in `page`, or undefined. */
function svg(page: string, id: string): string | undefined {
  const start = page.indexOf(`<svg class="plot" data-plot="${id}"`);
  return start < 0 ? undefined : page.slice(start, page.indexOf('</svg>', start));
}

/** Per series: its drawn marks' tooltips (line-plot circles or heatmap cells) and its colour. */
function series(plot: string) {
  const out = new Map<string, { marks: string[]; missing: number; color: string }>();
  const chunks = plot.split('<g class="series" data-series="').slice(1);
  for (const chunk of chunks) {
    const name = chunk
      .slice(0, chunk.indexOf('"'))
      .replace(/&#(\d+);/g, (_, c) => String.fromCharCode(c));
    const body = chunk.split('<g class="legend"')[0];
    const marks = [
      ...body.matchAll(/class="(?:mark|cell mark[^"]*)"[\s\S]*?<title>([^<]*)<\/title>/g),
    ].map((m) => m[1].replace(/&#(\d+);/g, (_, c) => String.fromCharCode(c)));
    const color = /(?:stroke|fill)="(#[0-9a-f]{6})"/.exec(body)?.[1] ?? '';
    out.set(name, {
      marks,
      missing: (body.match(/class="cell mark missing"/g) ?? []).length,
      color,
    });
  }
  return out;
}

const seeds = REGIME_FIXTURE.seeds;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const std = (xs: number[]) =>
  Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / (xs.length - 1));

describe('regime plots (synthetic full results file)', () => {
  const page = html(regimeFixture());
  const names = [
    'swa @4.1k',
    'swa @16.4k',
    'swa,ovq @4.1k',
    'swa,ovq @16.4k',
    'swa,kvm @4.1k',
    'swa,kvm @16.4k',
    'swa,gdn @natural size',
  ];

  it('draws all six plots, each with a paragraph, and nothing is reported missing', () => {
    for (const id of PLOTS) expect(svg(page, id), id).toBeDefined();
    const r = regimeReport(regimeFixture());
    expect(r.plots.map((p) => p.id)).toEqual(PLOTS);
    expect(r.notDrawn).toEqual([]);
    for (const p of r.plots) expect(p.caption).not.toMatch(/Missing|no rows/);
    expect(page).not.toMatch(/Not drawn, for lack of data/);
    expect(page.match(/<figcaption>/g)!.length).toBe(5 + 6);
  });

  it('MQAR vs length: one series per mixer and budget, mean ± std over seeds at every length', () => {
    const s = series(svg(page, 'regime-mqar-length')!);
    expect([...s.keys()]).toEqual(names);
    for (const [name, { marks, color }] of s) {
      expect(marks, name).toHaveLength(3);
      expect(color).toBe(MIXER_COLORS[patternMixer(name.split(' ')[0])]);
    }
    // swa,ovq at 16k, 16×: the mean and std of its three seeds (pairs = 16, the common count).
    const values = seeds.map((seed) => accuracy('swa,ovq', 16384, seed, 16));
    expect(s.get('swa,ovq @16.4k')!.marks[2]).toBe(
      `swa,ovq @16.4k: T=1024 (16×): ${pct(mean(values))} ± ${pct(std(values)).replace('%', '')} (3 seeds)`,
    );
    expect(page).toMatch(/Other pair counts \(64\) are in the table below/);
    // The goals, from the same means (no softmax pattern here: that goal is not stated).
    const gap = (a: string, b: string, bb: number | null) =>
      (
        100 * mean(seeds.map((seed) => accuracy(a, 4096, seed, 4) - accuracy(b, bb, seed, 4)))
      ).toFixed(1);
    const caption = regimeReport(regimeFixture()).plots[0].caption;
    expect(caption).toContain(
      `at 4× swa,ovq @4.1k vs the best fixed-state mixer (swa,gdn @natural size): +${gap('swa,ovq', 'swa,gdn', null)} pts (goal: ≥ +20 pts)`,
    );
    expect(caption).toContain(
      `at 4× swa,ovq @4.1k vs swa,kvm @4.1k: +${gap('swa,ovq', 'swa,kvm', 4096)} pts (goal: ahead)`,
    );
    expect(caption).not.toMatch(/within 5 pts/);
  });

  it('MQAR vs state at 4×: one series per mixer, one dot per budget', () => {
    const s = series(svg(page, 'regime-mqar-state')!);
    expect([...s.keys()]).toEqual(['swa', 'swa,ovq', 'swa,kvm', 'swa,gdn']);
    expect(s.get('swa,ovq')!.marks).toHaveLength(2);
    expect(s.get('swa,gdn')!.marks).toHaveLength(1);
    const values = seeds.map((seed) => accuracy('swa,kvm', 4096, seed, 4));
    expect(s.get('swa,kvm')!.marks[0]).toContain(`4.35k numbers: ${pct(mean(values))}`);
  });

  it('NIAH vs length and vs state: per seed the mean over depths, then mean ± std over seeds', () => {
    const overDepths = (pattern: string, budget: number | null, seed: number, m: number) =>
      mean(REGIME_FIXTURE.depths.map((d) => accuracy(pattern, budget, seed, m, d)));
    const length = series(svg(page, 'regime-niah-length')!);
    expect([...length.keys()]).toEqual(names);
    for (const { marks } of length.values()) expect(marks).toHaveLength(3);
    const values = seeds.map((seed) => overDepths('swa,kvm', 16384, seed, 16));
    expect(length.get('swa,kvm @16.4k')!.marks[2]).toBe(
      `swa,kvm @16.4k: T=1024 (16×): ${pct(mean(values))} ± ${pct(std(values)).replace('%', '')} (3 seeds)`,
    );
    const r = regimeReport(regimeFixture());
    const caption = r.plots.find((p) => p.id === 'regime-niah-length')!.caption;
    expect(caption).toContain(
      'NIAH test accuracy averaged over needle depths 0, 0.5 and 1 at each',
    );
    // No series reaches 90% averaged over depths at 4× in the fixture.
    expect(caption).toContain('Goal ≥ 90% at 4×: met by none.');
    const gap = mean(
      seeds.map(
        (seed) => overDepths('swa,ovq', 4096, seed, 4) - overDepths('swa,kvm', 4096, seed, 4),
      ),
    );
    expect(caption).toContain(
      `at 4× swa,ovq @4.1k vs swa,kvm @4.1k: +${(100 * gap).toFixed(1)} pts;`,
    );
    expect(caption).not.toMatch(/goal: ahead/);
    const state = series(svg(page, 'regime-niah-state')!);
    expect([...state.keys()]).toEqual(['swa', 'swa,ovq', 'swa,kvm', 'swa,gdn']);
    expect(state.get('swa,ovq')!.marks).toHaveLength(2);
    const at4 = seeds.map((seed) => overDepths('swa,ovq', 16384, seed, 4));
    expect(state.get('swa,ovq')!.marks[1]).toContain(`16.6k numbers: ${pct(mean(at4))}`);
  });

  it('NIAH: a length × depth panel per mixer and budget, every cell filled', () => {
    const s = series(svg(page, 'regime-niah')!);
    expect([...s.keys()]).toEqual(names);
    for (const { marks, missing } of s.values()) {
      expect(marks).toHaveLength(9);
      expect(missing).toBe(0);
    }
    const values = seeds.map((seed) => accuracy('swa', 4096, seed, 4, 0.5));
    expect(s.get('swa @4.1k')!.marks).toContain(
      `swa @4.1k: T=256, depth 0.5: ${pct(mean(values))} ± ${pct(std(values)).replace('%', '')} (3 seeds)`,
    );
  });

  it('byte-LM: loss by position at 16× per mixer, and the 16×/1× ratio in the caption and table', () => {
    const s = series(svg(page, 'regime-loss')!);
    expect([...s.keys()]).toEqual(names);
    for (const { marks } of s.values()) expect(marks).toHaveLength(REGIME_FIXTURE.bins);
    expect(s.get('swa,ovq @4.1k')!.marks[0]).toMatch(/^swa,ovq @4\.1k: positions 0–31: loss /);
    const r = regimeReport(regimeFixture());
    const rows = regimeFixture().rows.filter(
      (x) => x.task === 'byte-lm' && x.mixers === 'swa' && x.budget === 4096,
    );
    const ratios = seeds.map(
      (seed) =>
        rows.find((x) => x.seed === seed && x.evalLen === 1024)!.value /
        rows.find((x) => x.seed === seed && x.evalLen === 64)!.value,
    );
    const swa = r.lossRatios.find((x) => x.series === 'swa @4.1k' && x.evalLen === 1024)!;
    expect(swa.ratio).toBeCloseTo(mean(ratios), 12);
    expect(swa.seeds).toBe(3);
    expect(r.plots.find((p) => p.id === 'regime-loss')!.caption).toContain(
      `swa @4.1k ${mean(ratios).toFixed(3)} ± `,
    );
    expect(page).toMatch(/<th>loss ÷ loss at 1×<\/th>/);
  });
});

describe('regime plots with data missing', () => {
  it('leaves missing points out and names them, never drawing them as 0', () => {
    const file = regimeFixture();
    const gone = (r: RegimeRow) =>
      // swa,kvm @16k has no 16× MQAR rows; swa,ovq @4k lost one seed at 4×; one NIAH cell.
      (r.task === 'mqar' && r.mixers === 'swa,kvm' && r.budget === 16384 && r.evalLen === 1024) ||
      (r.task === 'mqar' &&
        r.mixers === 'swa,ovq' &&
        r.budget === 4096 &&
        r.evalLen === 256 &&
        r.seed === 2) ||
      (r.task === 'niah' &&
        r.mixers === 'swa,gdn' &&
        r.evalLen === 1024 &&
        r.metric === 'accuracy@depth=1');
    file.rows = file.rows.filter((r) => !gone(r));
    const page = html(file);
    const length = series(svg(page, 'regime-mqar-length')!);
    expect(length.get('swa,kvm @16.4k')!.marks).toHaveLength(2);
    expect(length.get('swa,kvm @16.4k')!.marks.join()).not.toMatch(/T=1024/);
    expect(length.get('swa,ovq @4.1k')!.marks[1]).toMatch(/\(2 seeds\)$/);
    const caption = regimeReport(file).plots[0].caption;
    expect(caption).toContain('Missing (no rows yet, not drawn): swa,kvm @16.4k at 16×.');
    expect(caption).toMatch(/point\(s\) have fewer of them/);
    const niah = series(svg(page, 'regime-niah')!);
    expect(niah.get('swa,gdn @natural size')!.missing).toBe(1);
    expect(niah.get('swa,gdn @natural size')!.marks).toContain(
      'swa,gdn @natural size: T=1024, depth 1: no rows',
    );
    const report = regimeReport(file);
    expect(report.plots.find((p) => p.id === 'regime-niah')!.caption).toContain(
      '1 cell(s) have no rows yet',
    );
    // A seed missing one depth gives no mean-over-depths point: gdn at 16× has none (every seed
    // lost depth 1 there), and the caption names it.
    const niahLength = series(svg(page, 'regime-niah-length')!);
    expect(niahLength.get('swa,gdn @natural size')!.marks.join()).not.toMatch(/T=1024/);
    expect(report.plots.find((p) => p.id === 'regime-niah-length')!.caption).toContain(
      'Missing (no rows yet, not drawn): swa,gdn @natural size at 16×.',
    );
  });

  it('byte-LM rows without byPosition: the ratio is still given, the curve is said to be missing', () => {
    const file = regimeFixture();
    file.rows = file.rows.map(({ byPosition: _, ...r }) => r);
    const r = regimeReport(file);
    expect(r.plots.map((p) => p.id)).not.toContain('regime-loss');
    expect(r.notDrawn).toEqual([
      { id: 'regime-loss', reason: expect.stringMatching(/no loss by position/) },
    ]);
    expect(r.lossRatios.length).toBe(7 * 2);
  });

  it('the partial file (lr search only): no plot, each one said to be missing, the search summarised', () => {
    const r = regimeReport(PARTIAL_REGIME);
    expect(r.plots).toEqual([]);
    expect(r.notDrawn.map((n) => n.id)).toEqual(PLOTS);
    expect(r.summary[0]).toMatch(
      /^4 row\(s\): 0 on the test split \(no task yet\), 4 from the learning-rate search/,
    );
    expect(r.summary[1]).toMatch(
      /3 group\(s\) have a learning-rate search but no test rows yet: mqar swa @4\.1k/,
    );
    const page = html(PARTIAL_REGIME);
    expect(page).toMatch(/Not drawn, for lack of data/);
    expect(page).toContain(
      '<li data-plot="regime-mqar-length">MQAR accuracy vs evaluation length: no MQAR test rows yet.</li>',
    );
    expect(page.match(/<svg class="plot" data-plot="regime/g)).toBeNull();
  });

  it('names unreadable rows and plots the rest', () => {
    const file = regimeFixture();
    (file.rows as unknown[]).push({ task: 'mqar', mixers: 'swa', value: 'x' });
    const r = regimeReport(file);
    expect(r.summary.join(' ')).toMatch(
      /Unreadable rows, left out: rows\[\d+\]: bad metric, stateNumbers, trainLen, evalLen, seed, value/,
    );
    expect(r.plots).toHaveLength(6);
  });

  it('renders the results file the sweep is writing now (whatever it holds)', () => {
    const path = join(dirname(fileURLToPath(import.meta.url)), '../../trainer/results/regime.json');
    if (!existsSync(path)) return;
    const r = regimeReport(JSON.parse(readFileSync(path, 'utf8')));
    // Every plot is either drawn or listed as missing with a reason.
    expect([...r.plots.map((p) => p.id), ...r.notDrawn.map((n) => n.id)].sort()).toEqual(
      [...PLOTS].sort(),
    );
    for (const n of r.notDrawn) expect(n.reason.length).toBeGreaterThan(0);
  });

  it('ablation rows go to their own table against the default pattern, not into the plots', () => {
    const file = regimeFixture();
    const variant = (r: RegimeRow, name: string, shift: number): RegimeRow => ({
      ...r,
      mixers: `${r.mixers}[${name}]`,
      value: r.value - shift,
    });
    const ovq = file.rows.filter(
      (r) => r.task === 'mqar' && r.mixers === 'swa,ovq' && r.budget === 4096,
    );
    file.rows.push(...ovq.map((r) => variant(r, 'growth=log', 0.1)));
    // Test-time capacity at one length only, so its other lengths have no row.
    file.rows.push(
      ...ovq.filter((r) => r.evalLen === 256).map((r) => variant(r, 'capacity×0.25', 0.2)),
    );
    const r = regimeReport(file);
    const plain = regimeReport(regimeFixture());
    expect(r.plots.map((p) => p.svg)).toEqual(plain.plots.map((p) => p.svg));
    expect(patternMixer('swa,ovq[growth=log]')).toBe('ovq');
    const log = r.ablations.filter((a) => a.variant === 'swa,ovq [growth=log]');
    // 4 MQAR cells (length, pairs) of the fixture.
    expect(log).toHaveLength(4);
    for (const a of log) {
      expect(a.baseline).toBeDefined();
      expect(a.value.mean).toBeCloseTo(a.baseline!.mean - 0.1, 12);
      expect(a.value.n).toBe(3);
    }
    expect(r.ablations.filter((a) => a.variant === 'swa,ovq [capacity×0.25]')).toHaveLength(2);
    expect(r.summary.at(-1)).toMatch(
      /^18 ablation row\(s\) \(swa,ovq\[growth=log\] and swa,ovq\[capacity×0\.25\]\) are compared/,
    );
    const page = html(file);
    expect(page).toMatch(/<th>variant value<\/th><th>default value<\/th>/);
    expect(page).toContain('<td>swa,ovq [capacity×0.25]</td>');
  });

  it('a variant trained on fewer seeds is compared with the default on those seeds, and its search is not "waiting"', () => {
    const file = regimeFixture();
    const ovq = file.rows.filter((r) => r.mixers === 'swa,ovq' && r.budget === 4096);
    const one = ovq.filter((r) => r.task === 'mqar' && r.seed === ovq[0].seed);
    expect(new Set(ovq.filter((r) => r.task === 'mqar').map((r) => r.seed)).size).toBe(3);
    const mixers = 'swa,ovq[spawn=random]';
    file.rows.push(...one.map((r) => ({ ...r, mixers, value: r.value + 0.01 })));
    file.rows.push({ ...one[0], task: 'mqar:validation', mixers });
    const r = regimeReport(file);
    const rows = r.ablations.filter((a) => a.variant === 'swa,ovq [spawn=random]');
    expect(rows.length).toBe(one.length);
    for (const a of rows) {
      expect(a.baseline!.n).toBe(1);
      expect(a.baseline!.seeds).toEqual(a.value.seeds);
      expect(a.value.mean).toBeCloseTo(a.baseline!.mean + 0.01, 12);
    }
    expect(r.summary.join(' ')).not.toMatch(
      /spawn=random[^.]*no test rows yet|no test rows yet[^.]*spawn=random/,
    );
  });
});
