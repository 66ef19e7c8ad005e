// startBackend when the second host-kernel pool (the baselines') cannot start: one printed line,
// neither pool left installed, and the OVQ pool that did start is stopped (no leaked workers).
import '@tensorflow/tfjs';
import type { OvqWorkerPool } from '@ovq/core';
import { baselineWorkerPool, hostWorkerPool } from '@ovq/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, expect, it, vi } from 'vitest';

const started: OvqWorkerPool[] = [];

vi.mock('@ovq/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@ovq/core')>();
  return {
    ...core,
    createOvqWorkerPool: async (options?: { threads?: number }) => {
      const pool = await core.createOvqWorkerPool(options);
      started.push(pool);
      return pool;
    },
  };
});

vi.mock('@ovq/tfjs', async (importOriginal) => {
  const tfjs = await importOriginal<typeof import('@ovq/tfjs')>();
  return {
    ...tfjs,
    createBaselineWorkerPool: async () => {
      throw new Error('planted: baseline workers refused');
    },
  };
});

afterAll(async () => {
  await Promise.all(started.map((p) => p.dispose()));
  await tf.setBackend('cpu');
});

it('a baselines pool that fails stops the OVQ pool too and installs neither', async () => {
  const { startBackend } = await import('../src/index.js');
  const lines: string[] = [];
  const backend = await startBackend({ backend: 'cpu', threads: 2, log: (l) => lines.push(l) });
  expect(started).toHaveLength(1);
  expect(started[0]?.disposed).toBe(true);
  expect(hostWorkerPool()).toBeNull();
  expect(baselineWorkerPool()).toBeNull();
  expect(backend.threads).toBe(0);
  expect(lines).toEqual([
    'worker pool: 2 threads could not start (planted: baseline workers refused); the mixer kernels run on the main thread',
  ]);
  await backend.dispose();
});
