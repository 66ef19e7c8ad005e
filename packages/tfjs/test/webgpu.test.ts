// ovqAttention on the tfjs webgpu backend (Dawn in Node), against @ovq/core: outputs and tf.grads.
import { ovqAttention as coreOvq, ovqAttentionBackward as coreOvqBackward } from '@ovq/core';
import { createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { ovqAttention, softmaxAttention } from '../src/index.js';
import { randomTensor, tf } from './backends.js';
import { checkMixer } from './mixer-check.js';
import { startWebGpu } from './webgpu-setup.js';

const reason = await startWebGpu();
if (reason) console.warn(`[ovq/tfjs] skipping webgpu tests: ${reason}`);

describe.skipIf(reason !== null)('ovqAttention op on webgpu', () => {
  beforeAll(async () => {
    await tf.setBackend('webgpu');
  });

  for (const [name, extra] of [
    ['default options', {}],
    [
      'fixed growth, no normalisation, first spawn',
      { growth: 'fixed', normalize: false, spawn: 'first' },
    ],
  ] as const) {
    it(`matches @ovq/core (outputs, tf.grad for q, k, v, β), no leaks — ${name} B2-H3-T37-dk5-dv6`, async () => {
      expect(tf.getBackend()).toBe('webgpu');
      const rng = createRng(7);
      const [B, H, T, dk, dv] = [2, 3, 37, 5, 6];
      const cfg = { chunkSize: 8, capacity: 12, ...extra };
      const beta = tf.tensor([0.7, 1.3, 2.1]);
      const q = randomTensor(rng, [B, H, T, dk]);
      const k = randomTensor(rng, [B, H, T, dk]);
      const v = randomTensor(rng, [B, H, T, dv]);
      const dOut = randomTensor(rng, [B, H, T, dv]);
      await checkMixer(
        {
          name: `ovq/webgpu ${name}`,
          batch: B,
          heads: H,
          seqLen: T,
          keyDim: dk,
          valueDim: dv,
          q,
          k,
          v,
          extras: [{ tensor: beta, kind: 'perHead' }],
          op: (q, k, v, b) => ovqAttention(q, k, v, b, cfg),
          forward: (h) => coreOvq(h, { ...cfg, beta: h.extras[0][0] }).output,
          backward: (h, dy) => {
            const g = coreOvqBackward(h, { ...cfg, beta: h.extras[0][0] }, dy);
            return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [[g.dbeta]] };
          },
        },
        dOut,
      );
      tf.dispose([beta, q, k, v, dOut]);
    });
  }

  it('explains what the webgpu backend does not support', () => {
    const q = tf.zeros([1, 1, 4, 2]);
    const beta = tf.ones([1]);
    expect(() =>
      ovqAttention(q, q, q, beta, { chunkSize: 2, capacity: 2, read: 'gaussian' }),
    ).toThrow(/config.read: is 'gaussian'; the webgpu backend supports 'dot' only/);
    expect(() => softmaxAttention(q, q, q)).toThrow(/no kernel for the 'webgpu' backend/);
    tf.dispose([q, beta]);
  });
});
