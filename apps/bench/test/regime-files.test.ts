// The report attaches every regime results file the trainer wrote (regime.json first, then the
// pilots by name), each read from apps/trainer/results.
import { readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { regimeFiles } from '../src/run.js';

it('lists apps/trainer/results/regime*.json with regime.json first', () => {
  const folder = join(dirname(fileURLToPath(import.meta.url)), '../../trainer/results');
  const onDisk = readdirSync(folder).filter((f) => f.startsWith('regime') && f.endsWith('.json'));
  const listed = regimeFiles();
  expect(listed.map((p) => basename(p)).sort()).toEqual(onDisk.sort());
  expect(listed.length).toBeGreaterThanOrEqual(2);
  expect(basename(listed[0] ?? '')).toBe('regime.json');
  for (const p of listed) expect(dirname(p)).toBe(folder);
});
