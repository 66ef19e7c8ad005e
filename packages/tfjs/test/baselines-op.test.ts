import { createRng } from '@ovq/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import {
  decayLinearComposite,
  linearComposite,
  softmaxComposite,
} from '../src/compositions/index.js';
import { decayLinearAttention, softmaxAttention, vqAttention } from '../src/index.js';
import { HOST_BACKENDS, tf, useBackend } from './backends.js';
import { Bt, type Case, cases, dk, dv, H, runCase, T } from './baseline-cases.js';

// The compositions of tfjs ops that softmax, linear and decay-linear attention use on webgpu.
const composites: Record<string, Case['op']> = {
  'softmax SWA W5 + RoPE + normalise': (q, k, v) =>
    softmaxComposite(q, k, v, { window: 5, rope: { base: 10000 }, normalize: true, beta: 2 }),
  'softmax full, default β': (q, k, v) => softmaxComposite(q, k, v, {}),
  linear: (q, k, v) => linearComposite(q, k, v, {}),
  'decay linear': (q, k, v, a) => decayLinearComposite(q, k, v, a, { scale: 0.5 }),
};

describe.each(HOST_BACKENDS)('baseline ops on %s', (backend) => {
  afterAll(() => tf.setBackend('cpu'));
  const names = cases(createRng(1)).map((c) => c.name);
  it.each(names)(
    `%s matches @ovq/baselines' float64 reference (outputs, tf.grad), no leaks B${Bt}-H${H}-T${T}-dk${dk}-dv${dv}`,
    async (name) => {
      await useBackend(backend);
      await runCase(name);
    },
  );

  it('names the argument on bad shapes and values', async () => {
    await useBackend(backend);
    const q = tf.zeros([1, 2, 4, 3]);
    expect(() => decayLinearAttention(q, q, q, tf.ones([1, 2, 5]))).toThrow(
      /decayLinearAttention: decay: has shape \[1, 2, 5\]; expected \[batch, heads, seqLen\] = \[1, 2, 4\]/,
    );
    expect(() => decayLinearAttention(q, q, q, tf.zeros([1, 2, 4]))).toThrow(
      /seq\.decay: value at index 0 is 0; expected values in \(0, 1\]/,
    );
    expect(() => vqAttention(q, q, q, tf.zeros([2, 3, 3]), { codebookSize: 4 })).toThrow(
      /codebook: has shape \[2, 3, 3\]/,
    );
    expect(() => softmaxAttention(q, q, q, { window: 0 })).toThrow(/config.window/);
    tf.dispose(q);
  });
});

describe('composite forms (the webgpu route) on cpu', () => {
  it.each(Object.keys(composites))(
    '%s matches the float64 reference (outputs, tf.grad), no leaks',
    async (name) => {
      await useBackend('cpu');
      await runCase(name, composites[name]);
    },
  );
});

// The public ops on webgpu are tested in webgpu.test.ts.
