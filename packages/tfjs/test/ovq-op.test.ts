import {
  ovqAttentionReference as coreOvq,
  ovqAttentionReferenceBackward as coreOvqBackward,
} from '@ovq/core';
import { createRng } from '@ovq/core/testing';
import { afterAll, describe, expect, it } from 'vitest';
import { OvqTfjsInputError, ovqAttention } from '../src/index.js';
import { HOST_BACKENDS, randomTensor, tf, useBackend } from './backends.js';
import { checkMixer } from './mixer-check.js';

const config = { chunkSize: 8, capacity: 12 } as const;
/** A spawnDistance that the random keys below exceed after the schedule's spawns (checked). */
const NOVELTY = 1;

describe('the novelty case is not vacuous', () => {
  it("the op test's first head seeds rows beyond the growth schedule in @ovq/core", () => {
    // The same draws as the op test below: q, then k, then v, [2, 3, 37, 5 | 6].
    const rng = createRng(7);
    const [B, H, T, dk, dv] = [2, 3, 37, 5, 6];
    const draw = (d: number) => randomTensor(rng, [B, H, T, d]);
    const [q, k, v] = [draw(dk), draw(dk), draw(dv)];
    const head = (x: tf.Tensor, d: number) =>
      Float64Array.from((x.dataSync() as Float32Array).subarray(0, T * d));
    const seq = {
      q: head(q, dk),
      k: head(k, dk),
      v: head(v, dv),
      seqLen: T,
      keyDim: dk,
      valueDim: dv,
    };
    const plain = coreOvq(seq, { ...config, beta: 1 }).state.size;
    const novel = coreOvq(seq, { ...config, beta: 1, spawnDistance: NOVELTY }).state.size;
    expect(novel).toBeGreaterThan(plain);
    tf.dispose([q, k, v]);
  });
});

describe.each(HOST_BACKENDS)('ovqAttention op on %s', (backend) => {
  afterAll(() => tf.setBackend('cpu'));

  for (const [name, extra] of [
    ['default options', {}],
    [
      'gaussian read, fixed growth, no normalisation',
      { read: 'gaussian', growth: 'fixed', normalize: false },
    ],
    [
      'ema update, random spawn, log growth',
      {
        update: { kind: 'ema', rate: 0.3 },
        spawn: 'random',
        growth: { kind: 'log', alpha: 3 },
        seed: 5,
      },
    ],
    [
      'first spawn, sqrt growth, capacity reached',
      { spawn: 'first', growth: { kind: 'sqrt', scale: 2 }, capacity: 4 },
    ],
    ['novelty spawn', { spawnDistance: NOVELTY }],
    [
      'novelty spawn with a reserve (saturating toward 2 rows)',
      { spawnDistance: NOVELTY, growth: { kind: 'saturating', rows: 2 } },
    ],
  ] as const) {
    it(`matches @ovq/core (outputs, tf.grad for q, k, v, β), no leaks — ${name} B2-H3-T37-dk5-dv6`, async () => {
      await useBackend(backend);
      const rng = createRng(7);
      const [B, H, T, dk, dv] = [2, 3, 37, 5, 6];
      const cfg = { ...config, ...extra };
      const beta = tf.tensor([0.7, 1.3, 2.1]);
      const q = randomTensor(rng, [B, H, T, dk]);
      const k = randomTensor(rng, [B, H, T, dk]);
      const v = randomTensor(rng, [B, H, T, dv]);
      const dOut = randomTensor(rng, [B, H, T, dv]);
      await checkMixer(
        {
          name: `ovq/${backend}`,
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

  it('rejects bad shapes and options with a named argument', async () => {
    await useBackend(backend);
    const q = tf.zeros([1, 2, 4, 3]);
    const v = tf.zeros([1, 2, 5, 3]);
    const beta = tf.ones([2]);
    expect(() => ovqAttention(q, q, v, beta, config)).toThrow(
      /ovqAttention: v: has shape \[1, 2, 5, 3\]; expected \[1, 2, 4, valueDim\]/,
    );
    expect(() => ovqAttention(q, q, q, tf.ones([3]), config)).toThrow(
      /beta: has shape \[3\]; expected \[heads\] = \[2\]/,
    );
    expect(() => ovqAttention(q, q, q, beta, { ...config, beta: 1 } as never)).toThrow(
      OvqTfjsInputError,
    );
    expect(() => ovqAttention(q, q, q, beta, { chunkSize: 0, capacity: 4 })).toThrow(
      /config.chunkSize/,
    );
    tf.dispose([q, v, beta]);
  });
});
// The webgpu backend is tested in webgpu.test.ts (its own process: it installs navigator.gpu).
