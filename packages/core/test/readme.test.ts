// The usage example in the root README is executed here, so it cannot rot.
import { resolve } from 'node:path';
import { expect, it } from 'vitest';
import { runReadmeExample } from './readme-example.js';

it('the README example runs and prints what it promises', async () => {
  const lines = await runReadmeExample(
    resolve(__dirname, '../../../README.md'),
    /## Using `@ovq\/core`\s+```ts\n([\s\S]*?)```/,
  );
  expect(lines[0]).toMatch(/^dictionary rows: \d+, pending tokens: 12$/);
  expect(lines[1]).toBe('streaming matches: true');
  expect(lines[2]).toMatch(/^gradient sizes: 4800 4800 4800, dβ = -?\d+\.\d{4}$/);
});
