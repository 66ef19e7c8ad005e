// The host kernels on worker pools: OVQ on @ovq/core's (setHostWorkerPool), the baselines on
// createBaselineWorkerPool's (setBaselineWorkerPool). Outputs and every gradient (q, k, v and the
// extras: per-head β, codebooks, per-token decays) are the same bytes without a pool and with 1 or
// 2 workers, on cpu and wasm; a worker that throws, exits, or is killed from outside mid-call
// (terminate(), as an out-of-memory kill does) fails the step with an error naming it (no hang)
// and leaves the weights as they were.
import { ovqAttention as coreOvq, createOvqWorkerPool, type OvqWorkerPool } from '@ovq/core';
import { createRng } from '@ovq/core/testing';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Test-only fault injection of the pool (not public API): the same module instance @ovq/core's
// source entry loads.
import { injectFault } from '../../core/src/parallel/pool.js';
import {
  type BaselineWorkerPool,
  createBaselineWorkerPool,
  OvqAttention,
  ovqAttention,
  SoftmaxAttention,
  setBaselineWorkerPool,
  setHostWorkerPool,
} from '../src/index.js';
import { injectBaselineFault } from '../src/parallel/baseline-pool.js';
import { HOST_BACKENDS, randomTensor, tf, useBackend } from './backends.js';
import { Bt, cases, dk, dv, H, T } from './baseline-cases.js';

const bytes = (t: tf.Tensor) => {
  const x = t.dataSync() as Float32Array;
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
};

let pools: OvqWorkerPool[] = [];
let basePools: BaselineWorkerPool[] = [];

beforeAll(async () => {
  // One worker first: from sources it fills the transpile cache the others read.
  pools = [await createOvqWorkerPool({ threads: 1 })];
  pools.push(await createOvqWorkerPool({ threads: 2 }));
  basePools = [await createBaselineWorkerPool({ threads: 1 })];
  basePools.push(await createBaselineWorkerPool({ threads: 2 }));
}, SLOW_TEST_TIMEOUT_MS);

afterAll(async () => {
  setHostWorkerPool(null);
  setBaselineWorkerPool(null);
  await Promise.all([...pools, ...basePools].map((p) => p.dispose()));
  await tf.setBackend('cpu');
});

/** Every baseline case's output and gradients (q, k, v, extras) as bytes, with the given pool. */
function runBaselines(pool: BaselineWorkerPool | null): string[][] {
  setBaselineWorkerPool(pool);
  try {
    const rng = createRng(5);
    return cases(rng).map((c) => {
      const q = randomTensor(rng, [Bt, H, T, dk]);
      const k = randomTensor(rng, [Bt, H, T, dk]);
      const v = randomTensor(rng, [Bt, H, T, dv]);
      const dy = randomTensor(rng, [Bt, H, T, dv]);
      const extras = c.extras.map((e) => e.tensor);
      const inputs = [q, k, v, ...extras];
      const out = c.op(q, k, v, ...extras);
      const grads = tf.grads((...xs: tf.Tensor[]) =>
        tf.sum(tf.mul(c.op(xs[0], xs[1], xs[2], ...xs.slice(3)), dy)),
      )(inputs);
      const result = [out, ...grads].map(bytes);
      tf.dispose([...inputs, dy, out, ...grads]);
      return result;
    });
  } finally {
    setBaselineWorkerPool(null);
  }
}

const config = { chunkSize: 8, capacity: 12 } as const;

/** Output and gradients (q, k, v, β) of the OVQ op as bytes, with the given pool. */
function run(pool: OvqWorkerPool | null) {
  setHostWorkerPool(pool);
  const rng = createRng(11);
  const [B, H, T, d] = [2, 3, 41, 6];
  const q = randomTensor(rng, [B, H, T, d]);
  const k = randomTensor(rng, [B, H, T, d]);
  const v = randomTensor(rng, [B, H, T, d]);
  const beta = tf.tensor([0.7, 1.9, 3.1]);
  const dy = randomTensor(rng, [B, H, T, d]);
  const out = ovqAttention(q, k, v, beta, config);
  const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, e: tf.Tensor) =>
    tf.sum(tf.mul(ovqAttention(a, b, c, e, config), dy)),
  )([q, k, v, beta]);
  const result = [out, ...grads].map(bytes);
  const head = { b: 1, h: 2 };
  const slice = (t: tf.Tensor) =>
    (t.dataSync() as Float32Array).subarray(
      (head.b * H + head.h) * T * d,
      (head.b * H + head.h + 1) * T * d,
    );
  const perHead = coreOvq(
    { q: slice(q), k: slice(k), v: slice(v), seqLen: T, keyDim: d, valueDim: d },
    { ...config, beta: 3.1 },
  ).output;
  const outHead = slice(out);
  tf.dispose([q, k, v, beta, dy, out, ...grads]);
  setHostWorkerPool(null);
  return { result, perHead, outHead };
}

describe.each(HOST_BACKENDS)('OVQ host kernel on the worker pool, %s', (backend) => {
  beforeAll(() => useBackend(backend));

  it('no pool, 1 worker and 2 workers give the same bytes (output, dq, dk, dv, dβ per head)', () => {
    const none = run(null);
    const one = run(pools[0]);
    const two = run(pools[1]);
    expect(one.result).toEqual(none.result);
    expect(two.result).toEqual(none.result);
    // The batched call with per-head β computes head (1, 2) as the per-head path does with β = 3.1.
    let num = 0;
    let den = 0;
    none.perHead.forEach((r, i) => {
      num += (none.outHead[i] - r) ** 2;
      den += r ** 2;
    });
    expect(Math.sqrt(num / den)).toBeLessThan(1e-5);
  });

  it('baselines (softmax, SWA, linear, decay, GDN, VQ and VQ with cacheKeyGradient, KVM): no pool, 1 and 2 workers give the same bytes', () => {
    const none = runBaselines(null);
    expect(none.length).toBe(8);
    expect(runBaselines(basePools[0])).toEqual(none);
    expect(runBaselines(basePools[1])).toEqual(none);
  });

  it('a baselines worker that throws, exits or is killed fails the step naming it; weights untouched', async () => {
    for (const fault of ['throw', 'exit', 'kill'] as const) {
      const pool = await createBaselineWorkerPool({ threads: 2 });
      basePools.push(pool);
      const layer = new SoftmaxAttention({ heads: 2, keyDim: 4, window: 4, seed: 3 });
      const x = randomTensor(createRng(2), [2, 16, 8]);
      layer.apply(x);
      const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const before = weights.map(bytes);
      const sgd = tf.train.sgd(0.1);
      setBaselineWorkerPool(pool);
      injectBaselineFault(pool, fault);
      try {
        expect(() =>
          sgd.minimize(() => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar),
        ).toThrow(
          {
            throw:
              /baselines worker pool \(OvqSoftmaxAttention\): worker \d failed on head 0: Error: injected fault/,
            exit: /worker \d exited with code 3 during the call/,
            kill: /baselines worker pool \(OvqSoftmaxAttention\): worker \d stopped during the call \(terminated from outside or out of memory\)/,
          }[fault],
        );
        expect(weights.map(bytes)).toEqual(before);
        if (fault === 'throw') {
          expect(pool.disposed).toBe(false);
          tf.dispose(layer.apply(x) as tf.Tensor);
        } else {
          expect(pool.disposed).toBe(true);
          expect(() => layer.apply(x)).toThrow(/the baselines worker pool is unusable/);
        }
      } finally {
        setBaselineWorkerPool(null);
        sgd.dispose();
        x.dispose();
      }
    }
  }, 60_000);

  it('a worker that throws, exits or is killed fails the training step naming it; weights untouched', async () => {
    for (const fault of ['throw', 'exit', 'kill'] as const) {
      const pool = await createOvqWorkerPool({ threads: 2 });
      pools.push(pool);
      const layer = new OvqAttention({ heads: 2, keyDim: 4, capacity: 8, chunkSize: 4, seed: 3 });
      const x = randomTensor(createRng(2), [2, 16, 8]);
      layer.apply(x);
      const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
      const before = weights.map(bytes);
      const sgd = tf.train.sgd(0.1);
      setHostWorkerPool(pool);
      injectFault(pool, fault);
      expect(() =>
        sgd.minimize(() => tf.sum(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar),
      ).toThrow(
        {
          throw: /worker pool: worker \d failed on head 0: Error: injected fault/,
          exit: /worker \d exited with code 3 during the call/,
          kill: /worker pool: worker \d stopped during the call \(terminated from outside or out of memory\)/,
        }[fault],
      );
      expect(weights.map(bytes)).toEqual(before);
      if (fault === 'throw') {
        // A worker's exception leaves the pool usable.
        expect(pool.disposed).toBe(false);
        tf.dispose(layer.apply(x) as tf.Tensor);
      } else {
        // A dead worker breaks the pool: the next call says so instead of hanging.
        expect(() => layer.apply(x)).toThrow(/options.pool: the pool is unusable/);
      }
      setHostWorkerPool(null);
      sgd.dispose();
      x.dispose();
    }
  }, 60_000);
});
