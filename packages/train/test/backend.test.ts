// startBackend: wasm by default with the OVQ worker pool, one printed line when a backend falls
// back, clear errors for unknown names; training with 1 and 2 pool workers gives the same bytes;
// a decoder training step runs no transposed BatchMatMul (tfjs-wasm's slow path).
import '@tensorflow/tfjs';
import { baselineWorkerPool, hostWorkerPool } from '@ovq/tfjs';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  createTfjsMixer,
  DEFAULT_BACKEND,
  Decoder,
  type StartedBackend,
  startBackend,
} from '../src/index.js';

afterAll(async () => {
  await tf.setBackend('cpu');
});

/** Two AdamW steps of a small swa,ovq decoder; every variable's bytes afterwards. */
async function trainTwoSteps(): Promise<string[]> {
  const model = new Decoder(
    {
      vocabSize: 16,
      dModel: 16,
      heads: 4,
      layers: 2,
      mixers: 'swa,ovq',
      mixerOptions: { window: 4, ovqCapacity: 8, ovqChunkSize: 4 },
      seed: 9,
    },
    createTfjsMixer,
  );
  model.build();
  const optimizer = new AdamW();
  const vars = [...model.variables.values()];
  const names = new Map([...model.variables].map(([n, v]) => [v.name, n]));
  for (let s = 0; s < 2; s++) {
    const ids = tf.tensor2d(
      Int32Array.from({ length: 3 * 24 }, (_, i) => (i * 5 + s) % 16),
      [3, 24],
      'int32',
    );
    const { value, grads } = tf.variableGrads(
      () => tf.mean(tf.square(model.forward(ids))) as tf.Scalar,
      vars,
    );
    const named = new Map(Object.entries(grads).map(([k, g]) => [names.get(k) ?? k, g]));
    optimizer.apply(model.variables, named, 1e-2);
    tf.dispose([ids, value, ...named.values()]);
  }
  const out = vars.map((v) => {
    const x = v.dataSync() as Float32Array;
    return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
  });
  optimizer.dispose();
  model.dispose();
  return out;
}

describe('startBackend', () => {
  it('defaults to wasm with a worker pool of the requested size, and dispose() stops it', async () => {
    expect(DEFAULT_BACKEND).toBe('wasm');
    const lines: string[] = [];
    const started = await startBackend({ threads: 2, log: (l) => lines.push(l) });
    try {
      expect(started.backend).toBe('wasm');
      expect(tf.getBackend()).toBe('wasm');
      expect(started.threads).toBe(2);
      expect(hostWorkerPool()?.threads).toBe(2);
      expect(baselineWorkerPool()?.threads).toBe(2);
      expect(lines).toEqual([]);
    } finally {
      await started.dispose();
    }
    expect(hostWorkerPool()).toBeNull();
    expect(baselineWorkerPool()).toBeNull();
    await started.dispose(); // idempotent
  }, 60_000);

  it('a backend that cannot start falls back with exactly one line naming what was used', async () => {
    const lines: string[] = [];
    const started = await startBackend({
      backend: 'webgpu',
      threads: 1,
      log: (l) => lines.push(l),
    });
    expect(started.backend).toBe('wasm');
    expect(started.fellBackFrom).toBe('webgpu');
    expect(started.threads).toBe(0);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^backend: webgpu could not start \(.+\); using wasm$/);
    await started.dispose();
  });

  it('refuses an unknown backend by name', async () => {
    await expect(startBackend({ backend: 'tpu' })).rejects.toThrow(
      'backend: got "tpu"; expected one of cpu, wasm, webgpu',
    );
  });

  it(
    'training on 1 worker (no pool) and on 2 workers gives byte-identical weights',
    async () => {
      const runs: string[][] = [];
      for (const threads of [1, 2]) {
        const started: StartedBackend = await startBackend({ threads });
        try {
          expect(started.threads).toBe(threads === 1 ? 0 : 2);
          runs.push(await trainTwoSteps());
        } finally {
          await started.dispose();
        }
      }
      expect(runs[1]).toEqual(runs[0]);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  it('a decoder training step on wasm runs no BatchMatMul with a transposed operand', async () => {
    const started = await startBackend({ threads: 1 });
    const original = tf.getKernel('BatchMatMul', 'wasm')!;
    const flags: boolean[] = [];
    tf.unregisterKernel('BatchMatMul', 'wasm');
    tf.registerKernel({
      ...original,
      kernelFunc: (args) => {
        const a = args.attrs as { transposeA: boolean; transposeB: boolean };
        flags.push(a.transposeA || a.transposeB);
        return original.kernelFunc(args);
      },
    });
    try {
      await trainTwoSteps();
    } finally {
      tf.unregisterKernel('BatchMatMul', 'wasm');
      tf.registerKernel(original);
      await started.dispose();
    }
    expect(flags.length).toBeGreaterThan(20);
    expect(flags.filter(Boolean)).toHaveLength(0);
  }, 60_000);
});
