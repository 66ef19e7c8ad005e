// `ovq-train sweep` with a regime file (ovq-regime/1): plan, run, resume, shards, bad flags.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { validateResults } from '@ovq/train';
import { describe, expect, it } from 'vitest';
import { run, tempDir } from './helpers.js';

const toy = {
  schema: 'ovq-regime/1',
  model: { dModel: 16, heads: 2, layers: 2, window: 8, chunkSize: 8 },
  trainLen: 32,
  batchSize: 4,
  steps: 2,
  evalMultiples: [1, 2],
  tasks: [{ name: 'niah', needleLength: 2, depths: [0.5] }],
  mixers: ['swa,ovq', 'swa,linear'],
  budgets: [2048],
  seeds: [0, 1],
  lrs: [0.001, 0.003],
  validationSequences: 4,
  testSequences: 4,
  evalBatchSize: 4,
  backend: 'cpu',
};

function files() {
  const dir = tempDir('ovq-regime-');
  const config = join(dir, 'regime.json');
  writeFileSync(config, JSON.stringify(toy));
  return { dir, config, results: join(dir, 'results', 'regime.json'), runs: join(dir, 'runs') };
}

describe('ovq-train sweep --config <regime file>', () => {
  it('--dry-run prints every cell with its matched budget and runs nothing', async () => {
    const f = files();
    const r = await run(['sweep', '--config', f.config, '--dry-run', '--results', f.results]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /niah\/swa,ovq\/2048\/lr=0\.001 {2}ovq\.ovqCapacity=\d+ \(\d+ numbers\)/,
    );
    expect(r.stderr).toMatch(/niah\/swa,linear\/natural\/seed=1/);
    expect(r.stderr).toMatch(/8 of 8 cells/);
  });

  it('runs every cell, writes ovq-results/1 rows with their commands, and resumes to nothing', async () => {
    const f = files();
    const argv = ['sweep', '--config', f.config, '--results', f.results, '--runs', f.runs];
    const first = await run(argv);
    expect(first.code, first.stderr).toBe(0);
    const results = validateResults(JSON.parse(readFileSync(f.results, 'utf8')));
    // 2 patterns × (2 lr-search cells × 1 row + 2 seeds × 2 lengths × 1 depth).
    expect(results.rows).toHaveLength(12);
    for (const row of results.rows)
      expect(row.command).toBe(
        `ovq-train sweep --config ${f.config} --only '${row.task.replace(':validation', '')}/${row.mixers}/${row.budget ?? 'natural'}/${row.task.endsWith(':validation') ? `lr=${row.lr}` : `seed=${row.seed}`}'`,
      );
    expect(first.stderr).toMatch(/8 cell\(s\) run/);
    const again = await run(argv);
    expect(again.stderr).toMatch(/0 cell\(s\) run/);
    expect(JSON.parse(readFileSync(f.results, 'utf8')).rows).toHaveLength(12);
  }, 180_000);

  it('--dry-run plans the ablations: trained variants and test-time capacity, nothing run', async () => {
    const f = files();
    writeFileSync(
      f.config,
      JSON.stringify({
        ...toy,
        ablations: {
          variants: [
            { name: 'growth=log', growth: { kind: 'log', alpha: 4 } },
            { name: 'spawn=random', spawn: 'random' },
            { name: 'update=ema', update: { kind: 'ema', rate: 0.1 } },
          ],
          evalCapacity: [0.25, 1, 4],
        },
      }),
    );
    const r = await run(['sweep', '--config', f.config, '--dry-run', '--results', f.results]);
    expect(r.code, r.stderr).toBe(0);
    // 8 main cells, 3 variants × (2 lrs + 2 seeds), 3 capacities × 2 seeds.
    expect(r.stderr).toMatch(/26 of 26 cells/);
    expect(r.stderr).toMatch(
      /niah\/swa,ovq\[growth=log\]\/2048\/lr=0\.001 {2}\[trains OVQ with growth \{"kind":"log","alpha":4\}\] ovq\.ovqCapacity=(\d+)/,
    );
    const capacity = Number(
      /niah\/swa,ovq\/2048\/seed=0 {2}ovq\.ovqCapacity=(\d+)/.exec(r.stderr)![1],
    );
    expect(r.stderr).toContain(
      `niah/swa,ovq[capacity×0.25]/2048/seed=1  [scores the default model with OVQ capacity ×0.25 = ${Math.round(capacity / 4)}]`,
    );
    expect(r.stderr).toContain(`[scores the default model with OVQ capacity ×4 = ${4 * capacity}]`);
    expect(existsSync(f.results)).toBe(false);
    writeFileSync(f.config, JSON.stringify({ ...toy, ablations: { mixers: 'swa,linear' } }));
    const bad = await run(['sweep', '--config', f.config, '--dry-run']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(
      /ablations\.mixers is "swa,linear"; expected a pattern with an ovq layer/,
    );
  });

  it('--only and --shard select cells; bad values are usage errors', async () => {
    const f = files();
    const base = ['sweep', '--config', f.config, '--dry-run'];
    const only = await run([...base, '--only', 'niah/swa,linear/natural/seed=1']);
    // The seed cell and its group's lr search.
    expect(only.stderr).toMatch(/3 of 8 cells/);
    const shard = await run([...base, '--shard', '1/2']);
    expect(shard.stderr).toMatch(/4 of 8 cells/);
    const bad = await run([...base, '--shard', '2/2']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--shard: got "2\/2"; expected i\/n/);
    // With one rate, another seed's test cell runs alone (beside the search if need be); the
    // first seed's still brings the search whose model it reuses.
    writeFileSync(f.config, JSON.stringify({ ...toy, lrs: [0.003] }));
    const alone = await run([...base, '--only', 'niah/swa,linear/natural/seed=1']);
    expect(alone.stderr).toMatch(/1 of 6 cells/);
    const first = await run([...base, '--only', 'niah/swa,linear/natural/seed=0']);
    expect(first.stderr).toMatch(/2 of 6 cells/);
    writeFileSync(f.config, JSON.stringify(toy));
    const none = await run([...base, '--only', 'nosuch']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--only: "nosuch" is no cell or group/);
    writeFileSync(f.config, JSON.stringify({ ...toy, lrs: [] }));
    const invalid = await run(base);
    expect(invalid.code).toBe(2);
    expect(invalid.stderr).toMatch(/lrs: expected a non-empty array/);
  });
});
