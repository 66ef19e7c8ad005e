import { describe, expect, it } from 'vitest';
import {
  cellDone,
  meanStd,
  mergeResults,
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

  it('mean ± sample std', () => {
    expect(meanStd([1, 2, 3])).toEqual({ mean: 2, std: 1, n: 3 });
    expect(meanStd([4])).toEqual({ mean: 4, std: 0, n: 1 });
  });
});
