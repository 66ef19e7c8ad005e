import { describe, expect, it } from 'vitest';
import { quantile, summarize, timeRepeats } from '../src/measure/timing.js';

describe('timing statistics', () => {
  it('median and p20/p80 interpolate between order statistics (R type 7)', () => {
    const s = summarize([7, 3, 10, 1, 5, 9, 2, 8, 4, 6]);
    expect(s.median).toBeCloseTo(5.5, 12);
    expect(s.p20).toBeCloseTo(2.8, 12);
    expect(s.p80).toBeCloseTo(8.2, 12);
    expect([s.min, s.max, s.repeats]).toEqual([1, 10, 10]);
    expect(summarize([4]).p20).toBe(4);
    expect(quantile([1, 3], 0.5)).toBe(2);
    expect(Number.isNaN(quantile([], 0.5))).toBe(true);
  });

  it('discards warm-up runs and times each repeat on its own', async () => {
    // A fake clock: call i takes i+1 "seconds"; the first two calls are warm-up.
    let now = 0;
    let calls = 0;
    const fn = () => {
      calls++;
      now += calls;
    };
    const s = await timeRepeats(fn, {
      warmup: 2,
      repeats: 4,
      maxSeconds: 1e9,
      minRepeats: 3,
      clock: () => now,
    });
    expect(calls).toBe(6);
    expect(s.samples).toEqual([3, 4, 5, 6]);
    expect(s.median).toBe(4.5);
    expect(s.warmup).toBe(2);
  });

  it('stops adding repeats past the time budget, but not below the minimum', async () => {
    let now = 0;
    const s = await timeRepeats(() => void (now += 10), {
      warmup: 0,
      repeats: 50,
      maxSeconds: 15,
      minRepeats: 3,
      clock: () => now,
    });
    expect(s.repeats).toBe(3);
  });
});
