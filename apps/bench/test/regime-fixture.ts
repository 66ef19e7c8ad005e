// A synthetic ovq-results/1 file with every task of the regime sweep and known values, so the
// report's plots can be checked point by point (and rows removed to check the "missing" notes).
import type { RegimeRow } from '../src/report/regime.js';

export const REGIME_FIXTURE = {
  trainLen: 64,
  multiples: [1, 4, 16],
  seeds: [0, 1, 2],
  /** Pattern → budgets (null: fixed-state, natural size). */
  groups: [
    ['swa', [4096, 16384]],
    ['swa,ovq', [4096, 16384]],
    ['swa,kvm', [4096, 16384]],
    ['swa,gdn', [null]],
  ] as [string, (number | null)[]][],
  mqarCells: [
    [1, 16],
    [4, 16],
    [4, 64],
    [16, 16],
  ] as [number, number][],
  depths: [0, 0.5, 1],
  bins: 32,
};

/** Accuracy of a (pattern, budget, seed, multiple, extra) point: distinct and in [0, 1]. */
export function accuracy(
  pattern: string,
  budget: number | null,
  seed: number,
  m: number,
  extra = 0,
) {
  const p = REGIME_FIXTURE.groups.findIndex((g) => g[0] === pattern);
  const b = budget === null ? 0 : budget > 8000 ? 0.1 : 0;
  return Math.min(
    1,
    Math.max(0, 0.9 - 0.15 * p - 0.04 * Math.log2(m) + b + 0.01 * seed - 0.1 * extra),
  );
}

/** Loss at a position bin: falls with position, rises past the training length for SWA-only. */
export function binLoss(pattern: string, seed: number, bin: number, evalLen: number) {
  const centre = ((bin + 0.5) * evalLen) / REGIME_FIXTURE.bins;
  const past = Math.max(0, Math.log2(centre / REGIME_FIXTURE.trainLen));
  return 2 - 0.1 * Math.log2(1 + centre) + (pattern === 'swa' ? 0.05 * past : 0) + 0.01 * seed;
}

export function regimeFixture(): {
  schema: string;
  commit: string;
  machine: string;
  rows: RegimeRow[];
} {
  const { trainLen, multiples, seeds, groups, mqarCells, depths, bins } = REGIME_FIXTURE;
  const rows: RegimeRow[] = [];
  for (const [pattern, budgets] of groups)
    for (const budget of budgets) {
      const base = {
        mixers: pattern,
        budget,
        trainLen,
        lr: 1e-3,
        command: `ovq-train sweep --only ${pattern}`,
      };
      const state = (L: number) => (budget ?? 8192) + L;
      for (const seed of seeds) {
        for (const [m, pairs] of mqarCells)
          rows.push({
            ...base,
            task: 'mqar',
            seed,
            evalLen: m * trainLen,
            stateNumbers: state(m * trainLen),
            metric: `accuracy@pairs=${pairs}`,
            value: accuracy(pattern, budget, seed, m, pairs > 16 ? 1 : 0),
          });
        for (const m of multiples)
          for (const d of depths)
            rows.push({
              ...base,
              task: 'niah',
              seed,
              evalLen: m * trainLen,
              stateNumbers: state(m * trainLen),
              metric: `accuracy@depth=${d}`,
              value: accuracy(pattern, budget, seed, m, d),
            });
        for (const m of multiples) {
          const L = m * trainLen;
          const byPosition = Array.from({ length: bins }, (_, i) => binLoss(pattern, seed, i, L));
          rows.push({
            ...base,
            task: 'byte-lm',
            seed,
            evalLen: L,
            stateNumbers: state(L),
            metric: 'loss',
            value: byPosition.reduce((a, b) => a + b, 0) / bins,
            byPosition,
          });
        }
      }
      rows.push({
        ...base,
        task: 'mqar:validation',
        seed: 0,
        evalLen: trainLen,
        stateNumbers: state(trainLen),
        metric: 'accuracy@pairs=16',
        value: 0.5,
      });
    }
  return { schema: 'ovq-results/1', commit: 'fixture', machine: 'test', rows };
}

/** The partial file the sweep had written when this test was made: lr-search rows only. */
export const PARTIAL_REGIME = {
  schema: 'ovq-results/1',
  commit: 'c62dbbe',
  machine: '2-core AMD EPYC, Node v20.20.2, tfjs wasm',
  rows: [
    ['swa', 8192, 0.001, 0],
    ['swa', 8192, 0.003, 0.001953125],
    ['swa,ovq', 6046, 0.001, 0],
    ['swa,kvm', 3868, 0.001, 0],
  ].map(([mixers, stateNumbers, lr, value]) => ({
    task: 'mqar:validation',
    mixers,
    budget: 4096,
    seed: 0,
    trainLen: 256,
    lr,
    evalLen: 256,
    stateNumbers,
    metric: 'accuracy@pairs=16',
    value,
    command: `ovq-train sweep --config experiments/regime-pilot.json --only 'mqar/${mixers}/4096/lr=${lr}'`,
  })),
};
