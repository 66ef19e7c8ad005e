import { describe, expect, it } from 'vitest';
import { type AblationRow, ablationFindings } from '../src/suites/ablate.js';

const row = (axis: AblationRow['axis'], variant: string, perSeed: number[]): AblationRow => ({
  axis,
  variant,
  perSeed,
  accuracy: perSeed.reduce((a, b) => a + b, 0) / perSeed.length,
  dictionarySize: 128,
  stateNumbers: 12_416,
  implementation: 'fixture',
});

describe('ablation findings', () => {
  it('says which setting won, by how much, over how many seeds, and whether it is noise', () => {
    const findings = ablationFindings([
      row('default', 'farthest · saturating · mean · dot', [0.47, 0.49, 0.48]),
      row('growth', 'log (α=32)', [0.58, 0.59, 0.58]),
      row('growth', 'fixed', [0.3, 0.31, 0.29]),
      row('spawn', 'random', [0.5, 0.46, 0.47]),
    ]);
    const growth = findings.find((f) => f.axis === 'growth')!;
    expect(growth.winner).toBe('log (α=32)');
    expect(growth.margin).toBeCloseTo(0.1033, 3);
    expect(growth.seeds).toBe(3);
    expect(growth.text).toMatch(
      /^growth: log \(α=32\) wins with 58\.3% vs default \(farthest · saturating · mean · dot\) 48\.0%, \+10\.3 pts over 3 seeds \(paired ± 0\.\d pts: beyond 2σ\) — the default loses on this axis$/,
    );
    const spawn = findings.find((f) => f.axis === 'spawn')!;
    expect(spawn.winner).toMatch(/^default/);
    expect(spawn.text).toMatch(/within 2σ, not a clear win/);
    expect(spawn.text).not.toMatch(/default loses/);
  });
});
