import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { planCells, verifyCheckpoint } from '@ovq/train';
import { describe, expect, it } from 'vitest';
import { buildRunConfig } from '../src/config.js';
import { isRegimeFile } from '../src/regime.js';
import { readSweep } from '../src/sweep.js';
import { run, TINY, tempDir } from './helpers.js';

const BANNER = /Hi, looks like you are running TensorFlow\.js/;

function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    readdirSync(dir).map((n) => [n, readFileSync(join(dir, n)).toString('base64')]),
  );
}

function flipBits(bytes: Uint8Array, count: number, from: number, to: number): Uint8Array {
  const out = bytes.slice();
  for (let i = 0; i < count; i++) {
    const bit = from * 8 + ((i * 7919 + 13) % ((to - from) * 8));
    out[bit >> 3] ^= 1 << (bit & 7);
  }
  return out;
}

describe('ovq-train: bad input is refused with the flag or key named (exit 2)', () => {
  it('config files: unknown keys get a did-you-mean and the flag that sets them', async () => {
    const dir = tempDir();
    const cases: [object, RegExp][] = [
      [{ stpes: 5 }, /stpes: unknown key; did you mean "steps"\? \(flag --steps\)/],
      [
        { windw: 8 },
        /windw: unknown key; did you mean "model\.mixerOptions\.window"\? \(flag --window\)/,
      ],
      [
        { model: { dmodel: 32 } },
        /model\.dmodel: unknown key; did you mean "model\.dModel"\? \(flag --d-model\)/,
      ],
      [
        { task: { name: 'mqar', vocabSize: 16, numPiars: 2 } },
        /task\.numPiars: unknown key; did you mean "task\.numPairs"\? \(flag --pairs\)/,
      ],
      [{ steps: '10' }, /steps: got "10"; expected a positive integer \(flag --steps\)/],
    ];
    for (const [content, message] of cases) {
      const file = join(dir, 'run.json');
      writeFileSync(file, JSON.stringify(content));
      const out = join(dir, 'out');
      const r = await run(['run', '--config', file, '--out', out]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/^ovq-train: --config .*run\.json: /);
      expect(r.stderr).toMatch(message);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('every flag is checked, with its name in the message', async () => {
    const cases: [string[], RegExp][] = [
      [['run', '--lr', '-0.01'], /--lr: got "-0\.01"; expected a finite number > 0/],
      [['run', '--lr=0'], /--lr: got "0"; expected a finite number > 0/],
      [['run', '--steps', '1.5'], /--steps: got "1\.5"; expected a positive integer/],
      [['run', '--batch', '0'], /--batch: got "0"; expected a positive integer/],
      [['run', '--warmup', '-1'], /--warmup: got "-1"; expected a non-negative integer/],
      [['run', '--seed', 'x'], /--seed: got "x"; expected a non-negative integer/],
      [
        ['run', '--eval-lengths', '1,x'],
        /--eval-lengths: got "1,x"; expected comma-separated positive integers/,
      ],
      [
        ['run', '--checkpoint-every', '0'],
        /--checkpoint-every: got "0"; expected a positive integer/,
      ],
      [['run', '--stpes', '3'], /unknown flag --stpes for "ovq-train run"; did you mean --steps\?/],
      [['run', '--resume=yes'], /--resume: takes no value/],
      [['run', '--lr'], /--lr: needs a value/],
      [['run', 'mqar'], /unexpected argument "mqar"/],
      [
        ['run', '--backend', 'wasn'],
        /--backend: got "wasn"; choose cpu, wasm, webgpu \(did you mean wasm\?\)/,
      ],
      [
        ['eval', '--checkpoint', 'x.bin', '--batches', '0'],
        /--batches: got "0"; expected a positive integer/,
      ],
      [['eval', '--checkpoint', 'x.bin', '--lengths', '0'], /--lengths: got "0"/],
      [
        ['eval', '--checkpoint', 'x.bin', '--depths', '0,1.5'],
        /--depths: got "0,1\.5"; expected comma-separated numbers in \[0, 1\]/,
      ],
      [['eval', '--checkpoint', 'x.bin', '--depths', '0,,1'], /--depths: got "0,,1"/],
      [
        ['eval', '--checkpoint', '/no/such/ckpt.bin'],
        /--checkpoint: \/no\/such\/ckpt\.bin does not exist/,
      ],
      [['eval'], /--checkpoint: required/],
      [
        ['sample', '--checkpoint', 'x.bin', '--temperature=-1'],
        /--temperature: got "-1"; expected a finite number ≥ 0/,
      ],
      [['sample', '--checkpoint', 'x.bin', '--temperature', '-1'], /--temperature: got "-1"/],
      [
        ['sample', '--checkpoint', 'x.bin', '--tokens', '2.5'],
        /--tokens: got "2\.5"; expected a positive integer/,
      ],
      [['sample', '--checkpoint', 'x.bin', '--prompt', ''], /--prompt: empty/],
      [
        ['sweep', '--config', '/no/such/sweep.json'],
        /--config: \/no\/such\/sweep\.json does not exist/,
      ],
      [['train'], /unknown command "train"/],
    ];
    for (const [argv, message] of cases) {
      const r = await run(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: 2 });
      expect(r.stderr).toMatch(message);
      expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    }
  });
});

describe('ovq-train: run folders are never mixed or lost', () => {
  it('refuses a folder holding a run unless --resume or --force, writing nothing when refused', async () => {
    const out = tempDir();
    const first = await run(['run', ...TINY, '--steps', '2', '--eval-every', '2', '--out', out]);
    expect(first.code).toBe(0);
    expect(`${first.stdout}${first.stderr}`).not.toMatch(BANNER);
    const before = snapshot(out);
    expect(Object.keys(before).sort()).toEqual(['ckpt.bin', 'config.json', 'metrics.jsonl']);

    const again = await run(['run', ...TINY, '--steps', '3', '--out', out]);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(
      /--out: .* already holds a run \(ckpt\.bin, metrics\.jsonl, config\.json\); pass --resume to continue it or --force to replace it/,
    );
    // A --resume that cannot continue the checkpoint is refused before config.json is touched.
    const changed = await run([
      'run',
      ...TINY,
      '--len',
      '32',
      '--steps',
      '3',
      '--resume',
      '--out',
      out,
    ]);
    expect(changed.code).toBe(2);
    expect(changed.stderr).toMatch(
      /--resume: this run's seqLen differ from the checkpoint's; only --steps may change/,
    );
    expect(snapshot(out)).toEqual(before);

    const forced = await run([
      'run',
      ...TINY,
      '--steps',
      '3',
      '--eval-every',
      '3',
      '--force',
      '--out',
      out,
    ]);
    expect(forced.code).toBe(0);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === 'step')
      .map((r) => r.step);
    expect(steps).toEqual([1, 2, 3]);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).steps).toBe(3);
  });

  it('--resume without a checkpoint says so (no raw ENOENT) and writes nothing', async () => {
    const out = tempDir();
    const r = await run(['run', ...TINY, '--resume', '--out', out]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(
      /--resume: .*ckpt\.bin does not exist, so there is no run to continue/,
    );
    expect(r.stderr).not.toMatch(/ENOENT/);
    expect(readdirSync(out)).toEqual([]);
    // A run killed before its first checkpoint: the way out is --force.
    writeFileSync(join(out, 'config.json'), '{}');
    const early = await run(['run', ...TINY, '--resume', '--out', out]);
    expect(early.code).toBe(2);
    expect(early.stderr).toMatch(/stopped before its first checkpoint; start it over with --force/);
  });

  it('a corrupt checkpoint (50 flipped bits in its weights) is refused by eval, sample and --resume', async () => {
    const out = tempDir();
    expect(
      (await run(['run', ...TINY, '--steps', '2', '--eval-every', '2', '--out', out])).code,
    ).toBe(0);
    const path = join(out, 'ckpt.bin');
    const bytes = new Uint8Array(readFileSync(path));
    const { header } = verifyCheckpoint(bytes);
    const start = bytes.length - header.payloadFloats * 4;
    writeFileSync(path, flipBits(bytes, 50, start, start + 4 * header.moments.m[0].offset));
    const config = readFileSync(join(out, 'config.json'));
    const refusal = /ckpt\.bin: tensor .+ fails its CRC-32 checksum \(the file is corrupt\)/;
    for (const argv of [
      ['eval', '--checkpoint', path, '--batches', '1', '--lengths', '1'],
      ['sample', '--checkpoint', path, '--tokens', '1'],
      ['run', ...TINY, '--steps', '4', '--resume', '--out', out],
    ]) {
      const r = await run(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: 1 });
      expect(r.stderr).toMatch(refusal);
    }
    expect(readFileSync(join(out, 'config.json'))).toEqual(config);
  });

  it('SIGINT (Ctrl-C) finishes the step, saves and exits 130; the resumed run is byte-identical to an uninterrupted one (SIGTERM: test/process.test.ts)', async () => {
    const args = [...TINY, '--steps', '6', '--eval-every', '3'];
    const straight = tempDir();
    expect((await run(['run', ...args, '--out', straight])).code).toBe(0);

    const out = tempDir();
    let sent = false;
    const interrupted = await run(['run', ...args, '--out', out], (text) => {
      // The signal arrives as training starts: the step then in flight is the one saved.
      if (!sent && text.startsWith('training ')) {
        sent = true;
        setImmediate(() => process.emit('SIGINT', 'SIGINT'));
      }
    });
    expect(interrupted.code).toBe(130);
    expect(interrupted.stderr).toMatch(
      /SIGINT: finishing the current step and writing a checkpoint/,
    );
    const at = verifyCheckpoint(new Uint8Array(readFileSync(join(out, 'ckpt.bin')))).header.step;
    expect(at).toBeGreaterThanOrEqual(1);
    expect(at).toBeLessThan(6);
    expect(interrupted.stdout).toMatch(
      new RegExp(`interrupted at step ${at}/6; checkpoint written`),
    );
    expect(process.listenerCount('SIGINT')).toBe(0);
    expect(process.listenerCount('SIGTERM')).toBe(0);

    // Only --out and --resume: the checkpoint's config is the default.
    const resumed = await run(['run', '--out', out, '--resume', '--backend', 'cpu']);
    expect(resumed.code).toBe(0);
    expect(
      Buffer.compare(readFileSync(join(out, 'ckpt.bin')), readFileSync(join(straight, 'ckpt.bin'))),
    ).toBe(0);
    const steps = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === 'step')
      .map((r) => r.step);
    expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
  });
});

describe('ovq-train sweep', () => {
  it('prints progress on stderr while it trains, results on stdout', async () => {
    const dir = tempDir();
    const file = join(dir, 'sweep.json');
    writeFileSync(
      file,
      JSON.stringify({
        base: {
          task: { name: 'mqar', vocabSize: 16, numPairs: 2 },
          model: { dModel: 8, heads: 1, layers: 1, mixers: 'softmax' },
          seqLen: 16,
          batchSize: 2,
          steps: 4,
          warmup: 1,
          evalEvery: 4,
          evalBatches: 1,
          evalBatchSize: 2,
        },
        mixers: ['softmax'],
        lrs: [0.01, 0.003],
        backend: 'cpu',
      }),
    );
    const r = await run(['sweep', '--config', file, '--out', join(dir, 'out')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/sweep run 1\/2: mqar softmax lr=0\.01 \(4 steps\)/);
    expect(r.stderr).toMatch(/sweep run 2\/2: mqar softmax lr=0\.003/);
    expect(r.stderr).toMatch(/step 4\/4 {2}loss/);
    expect(r.stdout).toMatch(/\| mqar \| softmax \| /);
    expect(`${r.stdout}${r.stderr}`).not.toMatch(BANNER);
  });

  it('a bad sweep file is refused before any run', async () => {
    const dir = tempDir();
    const file = join(dir, 'sweep.json');
    writeFileSync(file, JSON.stringify({ base: { steps: 4 }, mixers: ['softmax'], lrz: [0.01] }));
    const r = await run(['sweep', '--config', file, '--out', join(dir, 'out')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/lrz: unknown key; did you mean "lrs"\?/);
    writeFileSync(file, JSON.stringify({ base: { stpes: 4 }, mixers: ['softmax'], lrs: [0.01] }));
    expect((await run(['sweep', '--config', file])).stderr).toMatch(
      /base\.stpes: unknown key; did you mean "steps"/,
    );
    expect(existsSync(join(dir, 'out'))).toBe(false);
  });

  it('every experiment file exists where the README names it and is a valid sweep or regime plan', () => {
    const root = join(import.meta.dirname, '..');
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const named = [...new Set(readme.match(/experiments\/[\w.-]+\.json/g) ?? [])];
    expect(named.length).toBeGreaterThan(0);
    for (const file of named) expect(existsSync(join(root, file)), file).toBe(true);
    const swept = [...readme.matchAll(/sweep --config \S*?(experiments\/[\w.-]+\.json)/g)];
    expect(swept.length).toBeGreaterThan(0);
    // Regime files (schema ovq-regime/1) are planned by @ovq/train; the others are sweeps.
    const valid = (file: string) => {
      const raw = JSON.parse(readFileSync(join(root, file), 'utf8'));
      if (isRegimeFile(raw)) return planCells(raw).length;
      return readSweep(join(root, file)).runs.length;
    };
    for (const [, file] of swept) expect(valid(file), file).toBeGreaterThan(0);
    for (const file of readdirSync(join(root, 'experiments')).filter((f) => f.endsWith('.json')))
      expect(valid(join('experiments', file)), file).toBeGreaterThan(0);
  });

  it('every probe in experiments/probes is a valid `ovq-train run` config that RESULTS.md names', () => {
    const root = join(import.meta.dirname, '..');
    const results = readFileSync(join(root, 'RESULTS.md'), 'utf8');
    const probes = readdirSync(join(root, 'experiments', 'probes')).filter((f) =>
      f.endsWith('.json'),
    );
    expect(probes.length).toBeGreaterThan(0);
    for (const file of probes) {
      const path = join(root, 'experiments', 'probes', file);
      const { config } = buildRunConfig({ config: path });
      expect(config.steps, file).toBeGreaterThan(0);
      expect(results, file).toContain(`experiments/probes/${file}`);
    }
  });
});
