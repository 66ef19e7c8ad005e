// ovqAttention on the tfjs webgpu backend (Dawn in Node), against @ovq/core: outputs and tf.grads.
import { ovqAttention as coreOvq, ovqAttentionBackward as coreOvqBackward } from '@ovq/core';
import { assertClose, createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { OvqAttention, ovqAttention, SoftmaxAttention } from '../src/index.js';
import { randomTensor, tf } from './backends.js';
import { cases, runCase } from './baseline-cases.js';
import { checkMixer } from './mixer-check.js';
import { webGpuOrSkip } from './webgpu-setup.js';

const reason = await webGpuOrSkip();

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
    ['random spawn, log growth', { spawn: 'random', growth: { kind: 'log', alpha: 3 }, seed: 5 }],
    ['gaussian read', { read: 'gaussian' }],
    [
      'ema update, gaussian read, no normalisation',
      { update: { kind: 'ema', rate: 0.3 }, read: 'gaussian', normalize: false },
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

  it('OvqAttention layer: the webgpu call equals stepAsync (host @ovq/core streaming); a training step leaks nothing', async () => {
    const layer = new OvqAttention({
      heads: 2,
      keyDim: 4,
      chunkSize: 4,
      capacity: 6,
      outputGate: true,
      seed: 1,
    });
    const x = randomTensor(createRng(3), [2, 19, 12]);
    const full = layer.apply(x) as tf.Tensor;
    const state = layer.createState(2);
    const a = await layer.stepAsync(tf.slice(x, [0, 0, 0], [2, 7, 12]), state);
    const b = await layer.stepAsync(tf.slice(x, [0, 7, 0], [2, 12, 12]), state);
    const streamed = tf.concat([a, b], 1);
    assertClose('webgpu call vs stepAsync', await full.data(), await streamed.data(), 1e-4);
    const optimizer = tf.train.sgd(0.1);
    const before = await layer.getWeights()[0].data();
    optimizer.minimize(() => tf.mean(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar);
    const count = tf.memory().numTensors;
    optimizer.minimize(() => tf.mean(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar);
    expect(tf.memory().numTensors).toBe(count);
    expect(Array.from(await layer.getWeights()[0].data())).not.toEqual(Array.from(before));
    tf.dispose([x, full, a, b, streamed]);
    optimizer.dispose();
  });
});

describe.skipIf(reason !== null)('baseline ops on webgpu (tfjs-op compositions)', () => {
  beforeAll(async () => {
    await tf.setBackend('webgpu');
  });

  // Every mixer at two lengths in one process: tfjs-backend-webgpu caches shaders by a key that
  // can omit sizes baked into the code (its reverse cumsum does), so a second length catches a
  // stale shader that a single-length test would not.
  const names = cases(createRng(1)).map((c) => c.name);
  it.each(names.flatMap((name) => [37, 45].map((seqLen) => [name, seqLen] as const)))(
    '%s at T=%i matches the float64 reference (outputs, tf.grad), no leaks',
    async (name, seqLen) => {
      expect(tf.getBackend()).toBe('webgpu');
      await runCase(name, undefined, seqLen);
    },
  );

  it('SoftmaxAttention layer (SWA + RoPE): the webgpu call equals stepAsync (host streaming)', async () => {
    const layer = new SoftmaxAttention({
      heads: 2,
      keyDim: 4,
      window: 4,
      ropeBase: 10000,
      seed: 2,
    });
    const x = randomTensor(createRng(4), [2, 13, 12]);
    const full = layer.apply(x) as tf.Tensor;
    const state = layer.createState(2);
    const a = await layer.stepAsync(tf.slice(x, [0, 0, 0], [2, 6, 12]), state);
    const b = await layer.stepAsync(tf.slice(x, [0, 6, 0], [2, 7, 12]), state);
    const streamed = tf.concat([a, b], 1);
    assertClose('webgpu SWA call vs stepAsync', await full.data(), await streamed.data(), 1e-4);
    tf.dispose([x, full, a, b, streamed]);
  });
});
