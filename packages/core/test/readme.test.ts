// The usage example in the root README is executed here, so it cannot rot.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it, vi } from 'vitest';

it('the README example runs and prints what it promises', async () => {
  const readme = readFileSync(resolve(__dirname, '../../../README.md'), 'utf8');
  const block = readme.match(/## Using `@ovq\/core`\s+```ts\n([\s\S]*?)```/);
  expect(block, 'README has a ts example under "Using @ovq/core"').not.toBeNull();
  const source = block![1].replace(
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
  expect(lines[0]).toMatch(/^dictionary rows: \d+, pending tokens: 12$/);
  expect(lines[1]).toBe('streaming matches: true');
  expect(lines[2]).toMatch(/^gradient sizes: 4800 4800 4800, dβ = -?\d+\.\d{4}$/);
});
