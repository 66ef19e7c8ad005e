// ovqAttention on the tfjs webgpu backend (Dawn in Node), against @ovq/core: outputs and tf.grads.
import {
  ovqAttentionReference as coreOvq,
  ovqAttentionReferenceBackward as coreOvqBackward,
} from '@ovq/core';
import { createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { OvqAttention, ovqAttention, SoftmaxAttention } from '../src/index.js';
import { randomTensor, tf } from './backends.js';
import { cases, runCase } from './baseline-cases.js';
import { checkLayerStreamsAndTrains } from './layer-check.js';
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

  it('OvqAttention layer: the webgpu call equals stepAsync (host @ovq/core streaming); a training step changes every weight and leaks nothing', async () => {
    const layer = new OvqAttention({
      heads: 2,
      keyDim: 4,
      chunkSize: 4,
      capacity: 6,
      outputGate: true,
      seed: 1,
    });
    await checkLayerStreamsAndTrains('webgpu OvqAttention', layer, { seed: 3 });
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

  it('SoftmaxAttention layer (SWA + RoPE): the webgpu call equals stepAsync (host streaming); a training step changes every weight', async () => {
    const layer = new SoftmaxAttention({
      heads: 2,
      keyDim: 4,
      window: 4,
      ropeBase: 10000,
      seed: 2,
    });
    await checkLayerStreamsAndTrains('webgpu SWA', layer, { seed: 4, seqLen: 13, split: 6 });
  });
});
