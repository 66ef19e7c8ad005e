import { describe, expect, it } from 'vitest';
import { compareReports, formatComparison } from '../src/compare.js';
import { fixtureReport } from './fixture.js';

describe('compare', () => {
  it('computes b/a ratios for speed and memory and differences for accuracy', () => {
    const a = fixtureReport();
    const b = fixtureReport({ speedFactor: 2, accuracyShift: 0.1 });
    const rows = compareReports(a, b);
    const speed = rows.filter((r) => r.kind === 'speed' && r.a !== null);
    // 3 implementations × 4 lengths forward + 4 forward+backward.
    expect(speed.length).toBe(16);
    for (const r of speed) expect(r.ratio).toBeCloseTo(2, 12);
    // A row skipped in both runs is listed with its status, not a ratio.
    const skipped = rows.find((r) => r.key.includes('T=16384'))!;
    expect(skipped).toMatchObject({ ratio: null, note: 'skipped → skipped' });
    // One row per (data set, budget, mixer).
    const recall = rows.filter((r) => r.kind === 'recall');
    expect(recall.length).toBe(18);
    for (const r of recall) expect(r.ratio).toBeCloseTo(0.1, 12);
    const memory = rows.find((r) => r.kind === 'memory' && r.key.startsWith('softmax'))!;
    expect(memory.ratio).toBeCloseTo(1, 12);
    const text = formatComparison(rows, 'a.json', 'b.json');
    expect(text).toMatch(/2\.000×/);
    expect(text).toMatch(/\+10\.0 pts/);
  });

  it('skips measurements that only one run has', () => {
    const a = fixtureReport();
    const b = fixtureReport();
    b.speed!.rows = b.speed!.rows.filter((r) => r.T !== 1024);
    const keys = compareReports(a, b).map((r) => r.key);
    expect(keys.some((k) => k.includes('T=1024'))).toBe(false);
  });
});
