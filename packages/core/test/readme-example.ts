// Runs a README's TypeScript example against this package's sources and returns what it logged,
// so README examples are executed by tests and cannot rot.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, vi } from 'vitest';

/** The ```ts block captured by `block` (group 1) in `readmePath`, run; its console.log lines. */
export async function runReadmeExample(readmePath: string, block: RegExp): Promise<string[]> {
  const readme = readFileSync(readmePath, 'utf8');
  const match = readme.match(block);
  expect(match, `${readmePath} has the example ${block}`).not.toBeNull();
  const source = match![1].replace(
    "from '@ovq/core'",
    `from '${resolve(__dirname, '../src/index.ts')}'`,
  );
  const file = join(mkdtempSync(join(tmpdir(), 'ovq-readme-')), 'example.ts');
  writeFileSync(file, source);
  const lines: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((line: string) => {
    lines.push(line);
  });
  try {
    await import(/* @vite-ignore */ pathToFileURL(file).href);
  } finally {
    log.mockRestore();
  }
  return lines;
}
