// `resultTables`: the Markdown that RESULTS.md quotes, from a small results file whose means are
// worked out by hand: per seed over depths first, then mean ± std over seeds; a seed missing a
// depth is left out of that length rather than averaged over fewer depths.
import { describe, expect, it } from 'vitest';
import { RESULTS_SCHEMA, type ResultRow, type ResultsFile, resultTables } from '../src/index.js';

const row = (o: Partial<ResultRow>): ResultRow => ({
  task: 'niah',
  mixers: 'swa,ovq',
  budget: 4096,
  stateNumbers: 6046,
  trainLen: 256,
  evalLen: 256,
  seed: 0,
  lr: 0.003,
  metric: 'accuracy@depth=0',
  value: 0,
  command: 'ovq-train sweep …',
  ...o,
});

function niahFile(): ResultsFile {
  const rows: ResultRow[] = [];
  // swa,ovq @ 4096: seed 0 scores 0.2 / 0.4 at depths 0 / 1, seed 1 scores 0.6 / 0.8 (1×);
  // at 4× everything is 0.1 lower.
  for (const [seed, base] of [
    [0, 0.2],
    [1, 0.6],
  ])
    for (const [m, shift] of [
      [1, 0],
      [4, -0.1],
    ])
      for (const [d, plus] of [
        ['0', 0],
        ['1', 0.2],
      ] as const)
        rows.push(
          row({
            seed,
            evalLen: 256 * m,
            metric: `accuracy@depth=${d}`,
            value: base + plus + shift,
          }),
        );
  // swa,gdn (natural size): seed 0 complete at 1×; seed 1 lacks depth 1 at 1×.
  rows.push(row({ mixers: 'swa,gdn', budget: null, stateNumbers: 4096, value: 0.1 }));
  rows.push(
    row({
      mixers: 'swa,gdn',
      budget: null,
      stateNumbers: 4096,
      metric: 'accuracy@depth=1',
      value: 0.3,
    }),
  );
  rows.push(row({ mixers: 'swa,gdn', budget: null, stateNumbers: 4096, seed: 1, value: 0.9 }));
  // The lr search: two rates for swa,ovq on seed 0 (validation split).
  rows.push(row({ task: 'niah:validation', lr: 0.001, value: 0.5 }));
  rows.push(row({ task: 'niah:validation', lr: 0.001, metric: 'accuracy@depth=1', value: 0.7 }));
  rows.push(row({ task: 'niah:validation', lr: 0.003, value: 0.25 }));
  rows.push(row({ task: 'niah:validation', lr: 0.003, metric: 'accuracy@depth=1', value: 0.35 }));
  return { schema: RESULTS_SCHEMA, commit: 'test', machine: 'test', rows };
}

describe('resultTables', () => {
  it('NIAH: per seed the mean over depths, then mean ± std over seeds; incomplete seeds left out', () => {
    const md = resultTables(niahFile());
    // swa,ovq 1×: seed means 0.3 and 0.7 → 50.0 ± 28.3; 4×: 0.2 and 0.6 → 40.0 ± 28.3.
    expect(md).toContain(
      '| swa,ovq @ 4096 | 6046 / 6046 | 2 (0, 1) | 0.003 | 50.0 ± 28.3 | 40.0 ± 28.3 |',
    );
    // swa,gdn: seed 1 lacks depth 1, so 1× is seed 0 alone (20.0); no 4× rows at all.
    expect(md).toContain(
      '| swa,gdn @ natural size | 4096 / — | 2 (0, 1) | 0.003 | 20.0 | — |'.replace(
        '4096 / —',
        '—',
      ),
    );
    expect(md).toContain(
      '| mixers @ budget | state numbers (256 / 1024) | seeds | lr | 1× (256) | 4× (1024) |',
    );
    // By depth: mean ± std over the seeds that have the cell (gdn depth 0 at 1×: 0.1 and 0.9).
    expect(md).toContain(
      '| swa,ovq @ 4096 | 40.0 ± 28.3 | 60.0 ± 28.3 | 30.0 ± 28.3 | 50.0 ± 28.3 |',
    );
    expect(md).toContain('| swa,gdn @ natural size | 50.0 ± 56.6 | 30.0 | — | — |');
    // lr search: seed 0 at the training length, averaged over depths.
    expect(md).toContain('| mixers @ budget | lr 0.001 | lr 0.003 |');
    expect(md).toContain('| swa,ovq @ 4096 | 60.0 | 30.0 |');
  });

  it('MQAR: one table per pair count; byte-LM: loss in nats with three decimals', () => {
    const rows = [
      row({ task: 'mqar', metric: 'accuracy@pairs=4', value: 0.5 }),
      row({ task: 'mqar', metric: 'accuracy@pairs=16', value: 0.25 }),
      row({ task: 'byte-lm', metric: 'loss', value: 1.8765 }),
      row({ task: 'byte-lm', metric: 'loss', value: 1.8765, seed: 1 }),
    ];
    const md = resultTables({ schema: RESULTS_SCHEMA, commit: 't', machine: 't', rows });
    expect(md).toContain('Test split, accuracy@pairs=4 (%), mean ± std over seeds:');
    expect(md).toContain('Test split, accuracy@pairs=16 (%), mean ± std over seeds:');
    expect(md.indexOf('pairs=4 (%)')).toBeLessThan(md.indexOf('pairs=16 (%)'));
    expect(md).toContain('| swa,ovq @ 4096 | 6046 / 6046 | 1 (0) | 0.003 | 25.0 |');
    expect(md).toContain('| swa,ovq @ 4096 | 6046 / 6046 | 2 (0, 1) | 0.003 | 1.877 ± 0.000 |');
    expect(
      resultTables({ schema: RESULTS_SCHEMA, commit: 't', machine: 't', rows }, { task: 'mqar' }),
    ).not.toContain('byte-lm');
  });

  it('refuses a task the file does not have, naming the ones it has', () => {
    expect(() => resultTables(niahFile(), { task: 'mqar' })).toThrow(
      'task is "mqar"; expected one of the file\'s tasks (niah)',
    );
  });
});
