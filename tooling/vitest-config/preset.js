// Shared Vitest preset. The `@ovq/source` condition makes `import '@ovq/core'` resolve to
// TypeScript sources, so a package's tests run against its siblings without a build step.
import { defineConfig } from 'vitest/config';
import { TEST_TIMEOUT_MS } from './timeouts.js';

const conditions = ['@ovq/source', 'module', 'node', 'import', 'default'];

/** @param {import('vitest/config').UserConfig['test']} [test] */
export function ovqVitestConfig(test = {}) {
  return defineConfig({
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@ovq/source'] } },
    test: { include: ['test/**/*.test.ts'], testTimeout: TEST_TIMEOUT_MS, ...test },
  });
}
