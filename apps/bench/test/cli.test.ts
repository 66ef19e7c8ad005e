import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { HELP, main, parseArgs, UsageError } from '../src/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'ovq-bench-cli-'));
const fileA = join(dir, 'a.json');
const fileB = join(dir, 'b.json');
writeFileSync(fileA, '{}');
writeFileSync(fileB, '{}');

describe('ovq-bench command line', () => {
  it('parses suites and flags', () => {
    expect(parseArgs(['--help'])).toEqual({ command: 'help' });
    expect(parseArgs([])).toEqual({ command: 'help' });
    expect(parseArgs(['compare', fileA, fileB])).toEqual({
      command: 'compare',
      a: fileA,
      b: fileB,
    });
    const p = parseArgs([
      'speed',
      '--T',
      '256,1024',
      '--repeats',
      '7',
      '--dim',
      '16',
      '--modes',
      'fwd',
      '--no-memory',
      '--impl',
      'ovq,softmax',
      '--out',
      'x',
      '--no-webgpu',
    ]);
    expect(p).toMatchObject({
      command: 'speed',
      out: 'x',
      impl: ['ovq', 'softmax'],
      speed: {
        Ts: [256, 1024],
        repeats: 7,
        dims: { keyDim: 16, valueDim: 16 },
        modes: ['forward'],
        memoryTs: [],
        webgpu: false,
      },
    });
    expect(parseArgs(['quick'])).toMatchObject({ command: 'quick', out: 'bench-results' });
  });

  it('says what was wrong and what was expected', () => {
    expect(() => parseArgs(['sped'])).toThrow(UsageError);
    expect(() => parseArgs(['sped'])).toThrow(/unknown command "sped"; expected quick, speed/);
    expect(() => parseArgs(['speed', '--T', '12,x'])).toThrow(
      /--T got "12,x"; expected comma-separated positive integers/,
    );
    expect(() => parseArgs(['compare', 'a.json'])).toThrow(/expected two/);
    expect(() => parseArgs(['speed', '--frobnicate'])).toThrow(/unknown flag/);
    expect(() => parseArgs(['demo', '--foo'])).toThrow(/demo takes no flags; got "--foo"/);
    expect(() => parseArgs(['speed', '--T', '1.5'])).toThrow(
      /--T got "1.5"; expected comma-separated positive integers/,
    );
    expect(() => parseArgs(['speed', '--dim', 'abc'])).toThrow(
      /--dim got "abc"; expected a positive integer$/,
    );
    expect(() => parseArgs(['speed', '--repeats', '0'])).toThrow(/expected a positive integer/);
    expect(() => parseArgs(['compare', 'nofile.json', 'other.json'])).toThrow(
      /compare: file "nofile.json" does not exist/,
    );
    expect(() => parseArgs(['quick', '--base', 'nofile.json'])).toThrow(/--base "nofile.json"/);
    expect(parseArgs(['quick', '--strict'])).toMatchObject({ strict: true });
    expect(parseArgs(['recall', '--lrs', '0.001,0.003'])).toMatchObject({
      train: { learningRates: [0.001, 0.003] },
    });
  });

  it('exits 2 with one line on stderr for bad input, unknown --impl included', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      expect(await main(['demo', '--foo'])).toBe(2);
      expect(await main(['compare', 'nofile.json', 'b.json'])).toBe(2);
      // An existing file that is not a results file: the reason, no stack.
      expect(await main(['compare', fileA, fileB])).toBe(2);
      expect(
        await main(['speed', '--impl', 'nosuch', '--no-webgpu', '--no-tfjs', '--no-memory']),
      ).toBe(2);
      const lines = err.mock.calls.map((c) => String(c[0]));
      expect(lines).toHaveLength(4);
      expect(lines[2]).toMatch(/schema undefined; expected ovq-bench\/1/);
      expect(lines[3]).toMatch(
        /--impl "nosuch" matches no implementation; known: ovq\/core-reference/,
      );
      for (const l of lines) expect(l).not.toMatch(/\n\s+at /);
    } finally {
      err.mockRestore();
    }
  });

  it('train-speed --help prints its own flags and exits 0 without training', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      expect(await main(['train-speed', '--help'])).toBe(0);
      const text = log.mock.calls.map((c) => String(c[0])).join('\n');
      expect(text).toMatch(/^ {2}train-speed/);
      for (const flag of ['--steps N', '--mixers', '--threads N', '--quick'])
        expect(text).toContain(flag);
      expect(text).not.toContain('--budget S');
    } finally {
      log.mockRestore();
    }
  });

  it('states one run time for quick, the same in --help and the README', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const help = HELP.match(/quick .*?(about \d+ min)/s)?.[1];
    expect(help).toBeTruthy();
    const row = readme.split('\n').find((l) => l.startsWith('| `quick`'))!;
    expect(row).toContain(help!);
  });

  it('documents every command in --help', () => {
    for (const c of ['quick', 'speed', 'recall', 'ablate', 'lm', 'compare', 'demo'])
      expect(HELP).toContain(`  ${c}`);
  });
});
