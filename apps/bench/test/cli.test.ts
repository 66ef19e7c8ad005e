import { describe, expect, it } from 'vitest';
import { HELP, parseArgs, UsageError } from '../src/cli.js';

describe('ovq-bench command line', () => {
  it('parses suites and flags', () => {
    expect(parseArgs(['--help'])).toEqual({ command: 'help' });
    expect(parseArgs([])).toEqual({ command: 'help' });
    expect(parseArgs(['compare', 'a.json', 'b.json'])).toEqual({
      command: 'compare',
      a: 'a.json',
      b: 'b.json',
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
      /--T got "12,x"; expected comma-separated positive numbers/,
    );
    expect(() => parseArgs(['compare', 'a.json'])).toThrow(/expected two/);
    expect(() => parseArgs(['speed', '--frobnicate'])).toThrow(/unknown flag/);
  });

  it('documents every command in --help', () => {
    for (const c of ['quick', 'speed', 'recall', 'ablate', 'lm', 'compare', 'demo'])
      expect(HELP).toContain(`  ${c}`);
  });
});
