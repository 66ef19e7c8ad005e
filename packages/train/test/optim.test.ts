import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { AdamW, learningRate } from '../src/index.js';

const grads = (g: { W: number[]; b: number[] }) =>
  new Map<string, tf.Tensor>([
    ['W', tf.tensor2d(g.W, [2, 2])],
    ['b', tf.tensor1d(g.b)],
  ]);

function expectClose(actual: number[], expected: number[], digits: number) {
  expect(actual).toHaveLength(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i], digits);
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('AdamW', () => {
  it('matches two hand-computed steps: bias correction, decoupled decay on matrices only', () => {
    const lr = 0.1;
    const opt = new AdamW({ beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: 0.1 });
    const W = tf.variable(tf.tensor2d([0.5, -1, 2, 0], [2, 2]), true, `adamw-W-${Math.random()}`);
    const b = tf.variable(tf.tensor1d([1, -2]), true, `adamw-b-${Math.random()}`);
    const variables = new Map<string, tf.Variable>([
      ['W', W],
      ['b', b],
    ]);
    const g1 = { W: [0.3, -0.2, 0, 1], b: [0.5, -4] };
    opt.apply(variables, grads(g1), lr);
    // Step 1, by hand: m̂ = g and v̂ = g², so the Adam direction is sign(g) (0 where g = 0);
    // W also decays by lr·wd·W, b (rank 1) does not.
    //   W: 0.5 − 0.1·(1 + 0.1·0.5) = 0.395;  −1 − 0.1·(−1 − 0.1) = −0.89;
    //      2 − 0.1·(0 + 0.1·2) = 1.98;       0 − 0.1·(1 + 0) = −0.1
    //   b: 1 − 0.1·1 = 0.9;                  −2 − 0.1·(−1) = −1.9
    const w1 = Array.from(W.dataSync());
    expectClose(w1, [0.395, -0.89, 1.98, -0.1], 6);
    const b1 = Array.from(b.dataSync());
    expectClose(b1, [0.9, -1.9], 6);
    expect(opt.step).toBe(1);

    // Step 2 in float64 from the update rule: m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g²,
    // w ← w − lr·((m/(1−β1²)) / (√(v/(1−β2²)) + ε) + wd·w).
    const g2 = { W: [-0.1, 0.4, 2, 1], b: [0.25, 3] };
    opt.apply(variables, grads(g2), lr);
    const expected = (w: number[], ga: number[], gb: number[], wd: number) =>
      w.map((x, i) => {
        const m = 0.9 * (0.1 * ga[i]) + 0.1 * gb[i];
        const v = 0.95 * (0.05 * ga[i] ** 2) + 0.05 * gb[i] ** 2;
        const adam = m / (1 - 0.9 ** 2) / (Math.sqrt(v / (1 - 0.95 ** 2)) + 1e-8);
        return x - lr * (adam + wd * x);
      });
    const w2 = Array.from(W.dataSync());
    expectClose(w2, expected(w1, g1.W, g2.W, 0.1), 5);
    const b2 = Array.from(b.dataSync());
    expectClose(b2, expected(b1, g1.b, g2.b, 0), 5);
    // The second step differs from sign(g): the bias-corrected moments mix both gradients.
    expect(Math.abs(w2[0] - (w1[0] - lr * (-1 + 0.1 * w1[0])))).toBeGreaterThan(1e-2);
    expect(opt.step).toBe(2);
    opt.dispose();
    W.dispose();
    b.dispose();
  });

  it('skips variables without a gradient (their moments stay unset)', () => {
    const opt = new AdamW();
    const a = tf.variable(tf.tensor1d([1, 2]), true, `adamw-a-${Math.random()}`);
    const c = tf.variable(tf.tensor1d([3, 4]), true, `adamw-c-${Math.random()}`);
    opt.apply(
      new Map<string, tf.Variable>([
        ['a', a],
        ['c', c],
      ]),
      new Map([['a', tf.tensor1d([1, 1])]]),
      0.5,
    );
    expect(Array.from(c.dataSync())).toEqual([3, 4]);
    expect(opt.m.has('c')).toBe(false);
    expect(Array.from(a.dataSync())).toEqual([0.5, 1.5]);
    opt.dispose();
  });
});

describe('learningRate (linear warm-up, cosine decay to 10%)', () => {
  const peak = 0.01;
  it('warm-up: peak/warmup at step 0, rising linearly to the peak at its last step', () => {
    expect(learningRate(0, peak, 10, 100)).toBeCloseTo(0.001, 12);
    expect(learningRate(4, peak, 10, 100)).toBeCloseTo(0.005, 12);
    expect(learningRate(9, peak, 10, 100)).toBeCloseTo(peak, 12);
  });
  it('decay: the peak at the end of warm-up, halfway at the midpoint, 10% at total and after', () => {
    expect(learningRate(10, peak, 10, 100)).toBeCloseTo(peak, 12);
    expect(learningRate(55, peak, 10, 100)).toBeCloseTo(peak * 0.55, 12);
    expect(learningRate(100, peak, 10, 100)).toBeCloseTo(peak * 0.1, 12);
    expect(learningRate(150, peak, 10, 100)).toBeCloseTo(peak * 0.1, 12);
    expect(learningRate(99, peak, 10, 100)).toBeGreaterThan(peak * 0.1);
    expect(learningRate(100, peak, 10, 100, 0)).toBe(0);
  });
  it('no warm-up starts at the peak', () => {
    expect(learningRate(0, peak, 0, 100)).toBeCloseTo(peak, 12);
  });
});
