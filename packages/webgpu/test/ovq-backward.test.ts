// OVQ backward (reverse chunk scan, no snapshots; `update: ema` from √-spaced checkpoints) on
// every adapter present against the @ovq/core float64 reference, replaying the GPU's absorb
// decisions: every gradient (q, k, v, β).
import { assertClose } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import { ovqAttention, ovqAttentionBackward } from '../src/ovq/api.js';
import { present } from './adapters.js';
import { type Case, caseName, checkDecisions, compareGradients, makeInput } from './ovq-helpers.js';

const CASES: Case[] = [
  { bh: 3, T: 1, dk: 64, dv: 64, config: { chunkSize: 7, capacity: 8, beta: 4 } },
  {
    bh: 3,
    T: 63,
    dk: 60,
    dv: 64,
    config: { chunkSize: 7, capacity: 16, beta: 5, read: 'gaussian' },
  },
  { bh: 3, T: 500, dk: 64, dv: 60, config: { chunkSize: 64, capacity: 32, beta: 6 } },
  {
    bh: 3,
    T: 500,
    dk: 60,
    dv: 64,
    config: { chunkSize: 7, capacity: 24, beta: 3, spawn: 'random', seed: 3 },
  },
  {
    bh: 3,
    T: 63,
    dk: 64,
    dv: 64,
    config: {
      chunkSize: 7,
      capacity: 64,
      beta: 8,
      spawn: 'first',
      growth: 'full',
      normalize: false,
    },
  },
  // update: ema (checkpoints every ⌈√absorbs⌉ absorbs, chunk starts replayed from them).
  {
    bh: 3,
    T: 63,
    dk: 60,
    dv: 64,
    config: {
      chunkSize: 7,
      capacity: 16,
      beta: 5,
      read: 'gaussian',
      update: { kind: 'ema', rate: 0.5 },
    },
  },
  {
    bh: 3,
    T: 500,
    dk: 64,
    dv: 60,
    config: { chunkSize: 64, capacity: 32, beta: 6, update: { kind: 'ema', rate: 0.2 } },
  },
  {
    bh: 3,
    T: 500,
    dk: 60,
    dv: 64,
    config: {
      chunkSize: 7,
      capacity: 24,
      beta: 3,
      spawn: 'random',
      seed: 5,
      growth: { kind: 'log', alpha: 4 },
      update: { kind: 'ema', rate: 0.3 },
    },
  },
];

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`OVQ backward on ${adapter.description}`, () => {
    const ctx = adapter.ctx!;

    it.each(CASES.map((c) => [caseName(c), c] as const))(
      'matches the reference gradients: %s',
      async (_name, c) => {
        const input = makeInput(300, c);
        if (c.config.normalize === false) {
          // Unnormalised keys: keep logits moderate so float32 stays accurate.
          for (const x of [input.q, input.k]) for (let i = 0; i < x.length; i++) x[i] *= 0.15;
        }
        const dOut = Float32Array.from(makeInput(301, c).v);
        const fwd = await ovqAttention(ctx, input, c.config);
        const gpu = await ovqAttentionBackward(ctx, input, c.config, dOut);
        assertClose('output', fwd.output, gpu.output, 0);
        checkDecisions(input, c.config, fwd.trace);
        compareGradients(input, c.config, dOut, fwd.trace, gpu);
      },
    );

    it.each([
      ['mean', CASES[3]],
      ['ema', CASES[7]],
    ] as const)('is deterministic: two runs give identical bits (%s)', async (_update, c) => {
      const input = makeInput(5, c);
      const dOut = Float32Array.from(makeInput(6, c).v);
      const a = await ovqAttentionBackward(ctx, input, c.config, dOut);
      const b = await ovqAttentionBackward(ctx, input, c.config, dOut);
      for (const key of ['dq', 'dk', 'dv'] as const) {
        expect(Buffer.from(a[key].buffer).equals(Buffer.from(b[key].buffer)), key).toBe(true);
      }
      expect(a.dbeta).toBe(b.dbeta);
    });
  });
}
