// Runs ovq-train's main() in-process with stdout and stderr captured.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vi } from 'vitest';
import { main } from '../src/main.js';

export type Ran = { code: number; stdout: string; stderr: string };

export async function run(argv: string[], onOutput?: (text: string) => void): Promise<Ran> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const capture = (into: string[]) => (s: string | Uint8Array) => {
    const text = typeof s === 'string' ? s : new TextDecoder().decode(s);
    into.push(text);
    onOutput?.(text);
    return true;
  };
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(capture(stdout));
  const err = vi.spyOn(process.stderr, 'write').mockImplementation(capture(stderr));
  const log = vi
    .spyOn(console, 'log')
    .mockImplementation((...a) => void capture(stdout)(`${a.join(' ')}\n`));
  const warn = vi
    .spyOn(console, 'warn')
    .mockImplementation((...a) => void capture(stderr)(`${a.join(' ')}\n`));
  try {
    const code = await main(argv);
    return { code, stdout: stdout.join(''), stderr: stderr.join('') };
  } finally {
    out.mockRestore();
    err.mockRestore();
    log.mockRestore();
    warn.mockRestore();
  }
}

export const tempDir = (prefix = 'ovq-cli-') => mkdtempSync(join(tmpdir(), prefix));

/**
 * A tiny MQAR model on the cpu backend: a run of a few steps takes well under a second, and runs
 * compared byte for byte use the same backend whatever the default is.
 */
export const TINY = [
  '--backend',
  'cpu',
  '--task',
  'mqar',
  '--vocab',
  '16',
  '--pairs',
  '2',
  '--len',
  '16',
  '--batch',
  '2',
  '--d-model',
  '8',
  '--layers',
  '2',
  '--window',
  '4',
  '--capacity',
  '8',
  '--chunk',
  '4',
];
