import { describe, expect, it } from 'vitest';
import { headlines, scalingExponent } from '../src/suites/headlines.js';
import { fixtureReport } from './fixture.js';

describe('headline verdicts', () => {
  it('fits the time-vs-T exponent: 1 for linear, 2 for quadratic', () => {
    const rows = fixtureReport().speed!.rows.filter((r) => r.mode === 'forward');
    expect(scalingExponent(rows.filter((r) => r.mixer === 'ovq'))).toBeCloseTo(1, 10);
    expect(scalingExponent(rows.filter((r) => r.mixer === 'softmax'))).toBeCloseTo(2, 10);
    expect(scalingExponent(rows.slice(0, 1))).toBeNull();
  });

  it('holds each claim only on the evidence, and says what was measured', () => {
    const r = fixtureReport();
    const [linear, memory, recall] = headlines(r.speed, r.syntheticRecall);
    expect(linear).toMatchObject({ held: true });
    expect(linear.evidence).toMatch(/T\^1\.00.*softmax ∝ T\^2\.00/);
    expect(memory).toMatchObject({ held: true });
    expect(recall).toMatchObject({ held: true });
    expect(recall.evidence).toMatch(/OVQ N=128 60\.0%.*linear elu\+1 3\.0%/);

    // Make OVQ quadratic, its held memory grow with T, and a fixed-state mixer recall best.
    const bad = fixtureReport();
    for (const row of bad.speed!.rows.filter((x) => x.mixer === 'ovq')) {
      row.timing!.median = row.T * row.T * 1e-9;
      if (row.memory) row.memory.held = row.T * 1024;
    }
    bad.syntheticRecall!.points.find((p) => p.mixer === 'linear')!.accuracy = 0.99;
    expect(headlines(bad.speed, bad.syntheticRecall).map((h) => h.held)).toEqual([
      false,
      false,
      false,
    ]);
    expect(headlines(undefined, undefined).map((h) => h.held)).toEqual([null, null, null]);
  });
});
