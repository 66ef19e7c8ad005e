// ovqAttention's webgpu gradient from the forward's saved log-sum-exps and decisions: the same
// bits as @ovq/webgpu's backward that runs the forward again, and nothing kept afterwards (tfjs
// tensors and @ovq/webgpu GPU buffers), with or without a gradient being recorded.
import { createRng } from '@ovq/core/testing';
import { ovqAttentionBackward } from '@ovq/webgpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { contextFor } from '../src/kernels/webgpu-bridge.js';
import { ovqAttention } from '../src/ops/ovq.js';
import { randomTensor, tf } from './backends.js';
import { webGpuOrSkip } from './webgpu-setup.js';

const reason = await webGpuOrSkip();

type WebGpuBackend = { device: GPUDevice };

async function settled(): Promise<void> {
  const backend = tf.backend() as unknown as WebGpuBackend;
  await backend.device.queue.onSubmittedWorkDone();
  await new Promise((r) => setTimeout(r, 0));
}

describe.skipIf(reason !== null)('ovqAttention on webgpu: gradient from the saved forward', () => {
  beforeAll(async () => {
    await tf.setBackend('webgpu');
  });

  const [B, H, T, dk, dv] = [2, 2, 45, 6, 5];
  // β = 1 and no normalisation: the kernel sees q, k, v themselves (the op's β fold is × 1).
  const config = {
    chunkSize: 8,
    capacity: 10,
    normalize: false,
    spawn: 'random',
    seed: 2,
  } as const;

  it('equals the bits of the backward that runs the forward again (dq, dk, dv)', async () => {
    const rng = createRng(11);
    const [q, k, v, dy] = [dk, dk, dv, dv].map((d) => randomTensor(rng, [B, H, T, d]));
    const beta = tf.ones([H]);
    const [gq, gk, gv] = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
      tf.sum(tf.mul(ovqAttention(a, b, c, beta, config), dy)),
    )([q, k, v]);
    const ctx = contextFor((tf.backend() as unknown as WebGpuBackend).device);
    const data = async (t: tf.Tensor) => Float32Array.from(await t.data());
    const again = await ovqAttentionBackward(
      ctx,
      {
        q: await data(q),
        k: await data(k),
        v: await data(v),
        batchHeads: B * H,
        seqLen: T,
        keyDim: dk,
        valueDim: dv,
      },
      { ...config, beta: 1 },
      await data(dy),
    );
    const got = { dq: await data(gq), dk: await data(gk), dv: await data(gv) };
    for (const key of ['dq', 'dk', 'dv'] as const) {
      expect(got[key].every(Number.isFinite), `${key} finite`).toBe(true);
      const i = got[key].findIndex((x, j) => !Object.is(x, again[key][j]));
      expect(i, `${key}[${i}]: ${got[key][i]} vs ${again[key][i]}`).toBe(-1);
    }
    tf.dispose([q, k, v, dy, beta, gq, gk, gv]);
  });

  it('keeps nothing: tensors and GPU buffers after a training step or a forward equal those before', async () => {
    const rng = createRng(12);
    const [q, k, v, dy] = [dk, dk, dv, dv].map((d) => randomTensor(rng, [B, H, T, d]));
    const beta = tf.tensor([0.5, 2]);
    const ctx = contextFor((tf.backend() as unknown as WebGpuBackend).device);
    const step = async () => {
      const grads = tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
        tf.sum(tf.mul(ovqAttention(a, b, c, d, { chunkSize: 8, capacity: 10 }), dy)),
      )([q, k, v, beta]);
      await Promise.all(grads.map((g) => g.data()));
      tf.dispose(grads);
    };
    await step(); // compiles and registers everything once
    await settled();
    const tensors = tf.memory().numTensors;
    const buffers = ctx.liveTensors;
    await step();
    await settled();
    expect(tf.memory().numTensors, 'tfjs tensors after a step').toBe(tensors);
    expect(ctx.liveTensors, '@ovq/webgpu buffers after a step').toBe(buffers);
    // Without a gradient being recorded the saved tensors go at once: only the output remains.
    const y = ovqAttention(q, k, v, beta, { chunkSize: 8, capacity: 10 });
    expect(tf.memory().numTensors, 'tfjs tensors after a forward').toBe(tensors + 1);
    await y.data();
    y.dispose();
    await settled();
    expect(ctx.liveTensors, '@ovq/webgpu buffers after a forward').toBe(buffers);
    tf.dispose([q, k, v, dy, beta]);
  });
});
