import { describe, expect, it } from 'vitest';
import { layerStateCeiling, matchBudget } from '../src/regime/budget.js';

const shape = { heads: 4, headDim: 32, chunkSize: 16, window: 64 };

describe('matched state budgets', () => {
  it('counts each mixer as ALGORITHM.md §6 does, summed over heads', () => {
    // OVQ: N·(dk+dv+1) + C·(dk+dv) per head.
    expect(layerStateCeiling('ovq', { ovqCapacity: 100 }, shape)).toBe(4 * (100 * 65 + 16 * 64));
    // SWA: W·(dk+dv) per head.
    expect(layerStateCeiling('swa', { window: 32 }, shape)).toBe(4 * 32 * 64);
    // Linear / GDN: dk·dv per head.
    expect(layerStateCeiling('gdn', {}, shape)).toBe(4 * 32 * 32);
    // VQ: S·(dk+dv+1) + 2 blocks of raw keys and values.
    expect(layerStateCeiling('vq', { vqCodes: 50 }, shape)).toBe(4 * (50 * 65 + 2 * 16 * 64));
    // KVM: R rows of (dk+dv+1) at saturation plus the raw window.
    expect(layerStateCeiling('kvm', { kvmBudget: 40, window: 64 }, shape)).toBe(
      4 * (40 * 65 + 64 * 64),
    );
    expect(layerStateCeiling('softmax', {}, shape)).toBe(Number.POSITIVE_INFINITY);
  });

  it('picks the largest knob that fits and reports the numbers held', () => {
    for (const kind of ['ovq', 'kvm', 'vq', 'swa'] as const) {
      for (const budget of [32768, 65536]) {
        const m = matchBudget(kind, budget, shape);
        expect(m.value, kind).toBeGreaterThan(0);
        expect(m.stateNumbers).toBeLessThanOrEqual(budget);
        const bigger = layerStateCeiling(kind, { [m.knob!]: m.value! + 1 }, shape);
        expect(bigger, `${kind} at ${budget}: one more row must not fit`).toBeGreaterThan(budget);
      }
    }
    expect(matchBudget('ovq', 65536, shape).value).toBe(Math.floor((65536 / 4 - 16 * 64) / 65));
  });

  it('leaves fixed-state mixers at their natural size and refuses a budget too small', () => {
    expect(matchBudget('linear', 16384, shape)).toEqual({
      kind: 'linear',
      stateNumbers: 4 * (32 * 32 + 32),
    });
    expect(() => matchBudget('ovq', 1000, shape)).toThrow(
      /budget 1000 cannot hold one ovqCapacity row of ovq/,
    );
    expect(() => matchBudget('ovq', Number.NaN, shape)).toThrow(/budget is NaN/);
  });
});
