// explicitMatMul / denseProduct: same values and gradients as tf.matMul under tfjs autodiff (and a
// float64 product), and no BatchMatMul with a transposed operand anywhere in their forward and
// backward — nor in a mixer layer's training step — on cpu and wasm.
import { createRng } from '@ovq/core/testing';
import {
  getKernel,
  type KernelConfig,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { denseProduct, explicitMatMul, OvqAttention, SoftmaxAttention } from '../src/index.js';
import { HOST_BACKENDS, loadWasm, randomTensor, tf, useBackend } from './backends.js';

/** Runs `f` while recording the transpose flags of every BatchMatMul the backend executes. */
function recordMatMulFlags(backend: string, f: () => void): { a: boolean; b: boolean }[] {
  const original = getKernel('BatchMatMul', backend) as KernelConfig;
  const seen: { a: boolean; b: boolean }[] = [];
  unregisterKernel('BatchMatMul', backend);
  registerKernel({
    ...original,
    kernelFunc: (args) => {
      const attrs = args.attrs as { transposeA: boolean; transposeB: boolean };
      seen.push({ a: attrs.transposeA, b: attrs.transposeB });
      return original.kernelFunc(args);
    },
  });
  try {
    f();
  } finally {
    unregisterKernel('BatchMatMul', backend);
    registerKernel(original);
  }
  return seen;
}

/** Float64 C = op(A)·op(B) of row-major arrays (op = transpose when the flag is set). */
function product64(
  a: Float32Array,
  [ar, ac]: number[],
  b: Float32Array,
  [br, bc]: number[],
  ta: boolean,
  tb: boolean,
) {
  const m = ta ? ac : ar;
  const k = ta ? ar : ac;
  const n = tb ? br : bc;
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let p = 0; p < k; p++)
        s += (ta ? a[p * ac + i] : a[i * ac + p]) * (tb ? b[j * bc + p] : b[p * bc + j]);
      out[i * n + j] = s;
    }
  return out;
}

function rmsRatio(ref: ArrayLike<number>, got: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    if (!Number.isFinite(got[i])) return Number.POSITIVE_INFINITY;
    num += (got[i] - ref[i]) ** 2;
    den += ref[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

describe.each(HOST_BACKENDS)('explicitMatMul on %s', (backend) => {
  beforeAll(async () => {
    if (backend === 'wasm') {
      const reason = await loadWasm();
      if (reason) throw new Error(reason);
    }
    await useBackend(backend);
  });

  const combos = [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const;

  it.each(combos)(
    'transposeA %s, transposeB %s: values and gradients = tf.matMul autodiff',
    (ta, tb) => {
      const rng = createRng(7);
      const [m, k, n] = [37, 19, 23];
      const aShape = ta ? [k, m] : [m, k];
      const bShape = tb ? [n, k] : [k, n];
      const a = randomTensor(rng, aShape);
      const b = randomTensor(rng, bShape);
      const dy = randomTensor(rng, [m, n]);
      const loss = (f: typeof explicitMatMul) => (x: tf.Tensor, y: tf.Tensor) =>
        tf.sum(tf.mul(f(x, y, ta, tb), dy));
      const seen = recordMatMulFlags(backend, () => {
        const mine = tf.grads(loss(explicitMatMul));
        const [ga, gb] = mine([a, b]);
        const value = explicitMatMul(a, b, ta, tb);
        const ref = tf.grads(loss(tf.matMul as never));
        const [ra, rb] = ref([a, b]);
        const refValue = tf.matMul(a, b, ta, tb);
        const exact = product64(
          a.dataSync() as Float32Array,
          aShape,
          b.dataSync() as Float32Array,
          bShape,
          ta,
          tb,
        );
        expect(rmsRatio(exact, value.dataSync())).toBeLessThan(1e-6);
        expect(rmsRatio(refValue.dataSync(), value.dataSync())).toBeLessThan(1e-6);
        expect(rmsRatio(ra.dataSync(), ga.dataSync())).toBeLessThan(1e-6);
        expect(rmsRatio(rb.dataSync(), gb.dataSync())).toBeLessThan(1e-6);
        expect(ga.shape).toEqual(aShape);
        expect(gb.shape).toEqual(bShape);
      });
      // tf.matMul itself ran the flagged kernels here (the reference): count only ours, which come
      // first — 1 forward + 2 backward products for `mine`, then 1 forward.
      expect(seen.slice(0, 4)).toEqual(Array(4).fill({ a: false, b: false }));
    },
  );

  it('denseProduct over [B, T, D] (and · Wᵀ): values and gradients = autodiff, untransposed kernels', () => {
    const rng = createRng(3);
    const x = randomTensor(rng, [2, 5, 8]);
    const w = randomTensor(rng, [8, 6]);
    const wt = randomTensor(rng, [6, 8]);
    const dy = randomTensor(rng, [2, 5, 6]);
    let mine: tf.Tensor[] = [];
    const seen = recordMatMulFlags(backend, () => {
      mine = tf.grads((xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor) =>
        tf.sum(tf.mul(tf.add(denseProduct(xx, a), denseProduct(xx, b, true)), dy)),
      )([x, w, wt]);
    });
    expect(seen.length).toBeGreaterThan(0);
    expect(seen.every((s) => !s.a && !s.b)).toBe(true);
    const ref = tf.grads((xx: tf.Tensor, a: tf.Tensor, b: tf.Tensor) => {
      const flat = tf.reshape(xx, [10, 8]);
      const y = tf.add(tf.matMul(flat, a), tf.matMul(flat, b, false, true));
      return tf.sum(tf.mul(tf.reshape(y, [2, 5, 6]), dy));
    })([x, w, wt]);
    ref.forEach((r, i) => {
      expect(mine[i].shape).toEqual(r.shape);
      expect(rmsRatio(r.dataSync(), mine[i].dataSync())).toBeLessThan(1e-6);
    });
  });

  it('rejects non-2-D operands and mismatched inner dimensions, naming them', () => {
    expect(() => explicitMatMul(tf.zeros([2, 3, 4]), tf.zeros([4, 2]))).toThrow(
      /explicitMatMul: a, b: have shapes \[2, 3, 4\] and \[4, 2\]; expected two 2-D/,
    );
    expect(() => explicitMatMul(tf.zeros([2, 3]), tf.zeros([4, 2]))).toThrow(
      /expected inner dimensions to match/,
    );
    expect(() => denseProduct(tf.zeros([3]), tf.zeros([3, 2]))).toThrow(/denseProduct: x, w/);
  });

  it.each([
    [
      'OvqAttention',
      () => new OvqAttention({ heads: 2, keyDim: 4, capacity: 8, chunkSize: 4, seed: 1 }),
    ],
    ['SoftmaxAttention', () => new SoftmaxAttention({ heads: 2, keyDim: 4, window: 4, seed: 1 })],
  ])('a %s training step runs no transposed BatchMatMul', (_, make) => {
    const layer = make();
    const x = randomTensor(createRng(5), [2, 8, 8]);
    layer.apply(x);
    const weights = layer.trainableWeights.map((w) => w.read() as tf.Variable);
    const seen = recordMatMulFlags(backend, () => {
      const { grads } = tf.variableGrads(
        () => tf.sum(tf.square(layer.apply(x) as tf.Tensor)),
        weights,
      );
      tf.dispose(Object.values(grads));
    });
    // Forward: the q, k, v and output projections; backward: two products each.
    expect(seen.length).toBe(12);
    expect(seen.filter((s) => s.a || s.b)).toEqual([]);
  });
});
