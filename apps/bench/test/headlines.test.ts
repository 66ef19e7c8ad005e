import { describe, expect, it } from 'vitest';
import { fitLine, headlines, rowId, scalingExponent } from '../src/suites/headlines.js';
import { fixtureReport } from './fixture.js';

const verdicts = (r: ReturnType<typeof fixtureReport>) =>
  headlines(r.speed, r.syntheticRecall).map((h) => h.verdict);

describe('headline verdicts', () => {
  it('fits the time-vs-T exponent: 1 for linear, 2 for quadratic', () => {
    const rows = fixtureReport().speed!.rows.filter((r) => r.mode === 'forward');
    expect(scalingExponent(rows.filter((r) => r.mixer === 'ovq'))).toBeCloseTo(1, 10);
    expect(scalingExponent(rows.filter((r) => r.mixer === 'softmax'))).toBeCloseTo(2, 10);
    expect(scalingExponent(rows.slice(0, 1))).toBeNull();
    const f = fitLine([
      [0, 1],
      [1, 3],
      [2, 5],
      [3, 7],
    ]);
    expect(f.slope).toBeCloseTo(2, 12);
    expect(f.se).toBeCloseTo(0, 12);
  });

  it('holds each claim only on the evidence, and names the rows it used', () => {
    const r = fixtureReport();
    const hs = headlines(r.speed, r.syntheticRecall);
    expect(hs.map((h) => h.verdict)).toEqual(['held', 'held', 'held', 'held']);
    const [linear, memory, speed, recall] = hs;
    expect(linear.evidence).toMatch(/T\^1\.00 ± 0\.00 \(least squares over 4 lengths/);
    expect(memory.evidence).toMatch(
      /minus the fixed-size control linear\/baselines-fast \(5\.\d\d B\/token/,
    );
    expect(memory.rows).toContain('linear/baselines-fast fwd T=8192');
    expect(speed.evidence).toMatch(/FLOP ratio/);
    expect(recall.evidence, recall.evidence).toMatch(
      /OVQ wins 6, ties 0 \(within 2σ\), loses 0 of 6/,
    );
    // Every speed row a verdict cites exists in the speed table.
    const ids = new Set(r.speed!.rows.map(rowId));
    for (const h of hs.slice(0, 3)) {
      expect(h.rows.length).toBeGreaterThan(0);
      for (const row of h.rows) expect(ids.has(row), row).toBe(true);
    }
    expect(recall.rows).toContain('clustered ≤4.1k');
  });

  it('says NOT held on clean evidence against, inconclusive when the rows are noisy', () => {
    const bad = fixtureReport();
    for (const row of bad.speed!.rows.filter((x) => x.mixer === 'ovq')) {
      row.timing!.median = row.T * row.T * 1e-9;
      if (row.memory) row.memory.heldByPiece = row.memory.heldByPiece!.map((_, i) => 1e4 * (i + 1));
    }
    // KVM recalls better than OVQ at every budget.
    for (const c of bad.syntheticRecall!.comparisons) c.ovqGap = -0.2;
    expect(verdicts(bad)).toEqual(['not held', 'not held', 'held', 'not held']);

    const noisy = fixtureReport();
    for (const row of noisy.speed!.rows.filter((x) => x.mixer === 'ovq')) {
      row.timing!.median = row.T * row.T * 1e-9;
      row.noisy = true;
    }
    for (const c of noisy.syntheticRecall!.comparisons) c.ovqGap = 0.01;
    expect(verdicts(noisy).map((v, i) => (i === 0 || i === 3 ? v : ''))).toEqual([
      'inconclusive (noisy)',
      '',
      '',
      'inconclusive (noisy)',
    ]);
    expect(headlines(undefined, undefined).map((h) => h.verdict)).toEqual(
      Array(4).fill('not measured'),
    );
  });
});
