import { describe, expect, it } from 'vitest';
import {
  binPositions,
  cellDone,
  meanStd,
  mergeResults,
  positionBin,
  RESULTS_SCHEMA,
  type ResultRow,
  validateResults,
} from '../src/regime/results.js';

const row = (over: Partial<ResultRow> = {}): ResultRow => ({
  task: 'mqar',
  mixers: 'swa,ovq',
  budget: 16384,
  stateNumbers: 16000,
  trainLen: 512,
  evalLen: 2048,
  seed: 0,
  lr: 1e-3,
  metric: 'accuracy',
  value: 0.5,
  command: 'ovq-train sweep --config x.json --only mqar/swa,ovq/16384/0',
  ...over,
});

describe('ovq-results/1', () => {
  const empty = { schema: RESULTS_SCHEMA, commit: 'abc', machine: 'test', rows: [] } as const;

  it('merges by key: a re-run row replaces the old one, others are kept', () => {
    const a = mergeResults({ ...empty, rows: [] }, [row(), row({ evalLen: 512 })]);
    const b = mergeResults(a, [row({ value: 0.75 }), row({ seed: 1 })]);
    expect(b.rows).toHaveLength(3);
    expect(b.rows.find((r) => r.seed === 0 && r.evalLen === 2048)!.value).toBe(0.75);
  });

  it('knows which cells are done', () => {
    const file = mergeResults({ ...empty, rows: [] }, [row()]);
    expect(cellDone(file, row())).toBe(true);
    expect(cellDone(file, row({ seed: 2 }))).toBe(false);
    expect(cellDone(file, row({ lr: 3e-3 }))).toBe(false);
  });

  it('validates files and names the bad field', () => {
    expect(validateResults({ ...empty, rows: [row()] }).rows).toHaveLength(1);
    expect(() => validateResults({ ...empty, schema: 'x' })).toThrow(/schema is "x"/);
    expect(() => validateResults({ ...empty, rows: [row({ value: Number.NaN })] })).toThrow(
      /rows\[0\]\.value: expected a finite number/,
    );
    expect(() => validateResults({ ...empty, rows: [{ ...row(), command: 3 }] })).toThrow(
      /rows\[0\]\.command: expected a string/,
    );
    expect(() => validateResults(null)).toThrow(/expected a JSON object/);
  });

  it('accepts rows with and without byPosition, and rejects a bad one by name', () => {
    const bins = row({ metric: 'loss', evalLen: 8, byPosition: [2, 1.5, 1.2, 1.1] });
    expect(validateResults({ ...empty, rows: [row(), bins] }).rows[1].byPosition).toEqual([
      2, 1.5, 1.2, 1.1,
    ]);
    for (const bad of [[], [1, Number.NaN], [1, 'x'], new Array(9).fill(1), 'abc'])
      expect(() =>
        validateResults({
          ...empty,
          rows: [row(), { ...bins, byPosition: bad as number[] }],
        }),
      ).toThrow(/rows\[1\]\.byPosition: expected 1…8 finite numbers/);
  });

  it('bins positions into equal ranges that cover every position once', () => {
    const values = Float64Array.from({ length: 10 }, (_, t) => t);
    // 10 positions in 4 bins: [0,2) [2,5) [5,7) [7,10).
    expect([0, 1, 2, 3].map((i) => positionBin(i, 4, 10))).toEqual([
      [0, 2],
      [2, 5],
      [5, 7],
      [7, 10],
    ]);
    expect(binPositions(values, 4)).toEqual([0.5, 3, 5.5, 8]);
    expect(binPositions(values, 10)).toEqual([...values]);
    // Unscored (NaN) positions are skipped, not counted as 0; an all-NaN bin stays NaN.
    expect(binPositions([Number.NaN, 4, Number.NaN, Number.NaN], 2)).toEqual([4, Number.NaN]);
    expect(() => binPositions(values, 11)).toThrow(/bins is 11; expected an integer in 1…10/);
  });

  it('mean ± sample std', () => {
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: 1, n: 3 });
    expect(meanStd([4])).toEqual({ mean: 4, std: 0, n: 1 });
  });
});
