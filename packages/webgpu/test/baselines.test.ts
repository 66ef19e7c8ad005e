// Speed-baseline kernels (matmul yardstick, tiled softmax attention forward/backward, chunked
// linear attention) against plain float64 loops, on every adapter present.
import { assertClose, randomSeq } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import { attentionBackward, attentionForward } from '../src/ops/attention.js';
import {
  linearAttention,
  linearAttentionGpu,
  unnormalizedLinearAttention,
  unnormalizedLinearAttentionGpu,
} from '../src/ops/linear.js';
import { matmul } from '../src/ops/matmul.js';
import { present } from './adapters.js';
import {
  causalLinearAttention,
  causalSoftmaxAttention,
  causalSoftmaxAttentionBackward,
  concat,
  head,
  matmulRef,
} from './reference.js';

const TOL = 1e-4;

function heads(seed: number, bh: number, T: number, dk: number, dv: number) {
  const parts = Array.from({ length: bh }, (_, h) => randomSeq(seed + h, T, dk, dv));
  return {
    q: Float32Array.from(concat(parts.map((p) => p.q))),
    k: Float32Array.from(concat(parts.map((p) => p.k))),
    v: Float32Array.from(concat(parts.map((p) => p.v))),
    batchHeads: bh,
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
  };
}

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`baselines on ${adapter.description}`, () => {
    const ctx = adapter.ctx!;

    it.each([
      [1, 1, 1],
      [63, 60, 64],
      [130, 33, 70],
    ])('matmul M%i N%i K%i', async (m, n, k) => {
      const a = Float32Array.from(randomSeq(1, m, k, 1).q);
      const b = Float32Array.from(randomSeq(2, k, n, 1).q);
      assertClose('matmul', matmulRef(a, b, m, n, k), await matmul(ctx, a, b, m, n, k), TOL);
    });

    it.each([
      [1, 1, 64, 64],
      [3, 63, 60, 64],
      [3, 500, 64, 60],
    ])('softmax attention forward+backward BH%i-T%i-DK%i-DV%i', async (bh, T, dk, dv) => {
      const input = heads(10, bh, T, dk, dv);
      const scale = 1 / Math.sqrt(dk);
      const dOut = Float32Array.from(heads(99, bh, T, dv, 1).q);
      const fwd = await attentionForward(ctx, input, scale);
      const bwd = await attentionBackward(ctx, input, scale, dOut);
      const ref = Array.from({ length: bh }, (_, h) => {
        const q = head(input.q, h, T, dk);
        const k = head(input.k, h, T, dk);
        const v = head(input.v, h, T, dv);
        return {
          out: causalSoftmaxAttention(q, k, v, T, dk, dv, scale),
          grad: causalSoftmaxAttentionBackward(q, k, v, head(dOut, h, T, dv), T, dk, dv, scale),
        };
      });
      assertClose('output', concat(ref.map((r) => r.out)), fwd.output, TOL);
      assertClose('dq', concat(ref.map((r) => r.grad.dq)), bwd.dq, TOL);
      assertClose('dk', concat(ref.map((r) => r.grad.dk)), bwd.dk, TOL);
      assertClose('dv', concat(ref.map((r) => r.grad.dv)), bwd.dv, TOL);
      assertClose('dscale', [ref.reduce((s, r) => s + r.grad.dscale, 0)], [bwd.dscale], TOL);
    });

    it.each([
      [1, 1, 64, 64, 7],
      [3, 63, 60, 64, 64],
      [3, 500, 64, 60, 7],
    ])('unnormalized linear attention BH%i-T%i-DK%i-DV%i-C%i', async (bh, T, dk, dv, C) => {
      const input = heads(20, bh, T, dk, dv);
      const out = await unnormalizedLinearAttention(ctx, input, C);
      const ref = Array.from({ length: bh }, (_, h) =>
        causalLinearAttention(
          head(input.q, h, T, dk),
          head(input.k, h, T, dk),
          head(input.v, h, T, dv),
          T,
          dk,
          dv,
        ),
      );
      assertClose('output', concat(ref), out, TOL);
    });

    it('linearAttention / linearAttentionGpu are deprecated aliases of the unnormalized forms', () => {
      expect(linearAttention).toBe(unnormalizedLinearAttention);
      expect(linearAttentionGpu).toBe(unnormalizedLinearAttentionGpu);
    });

    it('times GPU work with timestamp queries when the adapter has them', async () => {
      if (!ctx.caps.timestamps) {
        expect(ctx.startTimer()).toBe(false);
        return;
      }
      const input = heads(40, 3, 63, 64, 64);
      expect(ctx.startTimer()).toBe(true);
      await attentionForward(ctx, input, 0.125);
      const ms = await ctx.stopTimer();
      expect(ms).not.toBeNull();
      expect(ms!).toBeGreaterThan(0);
    });

    it('is deterministic: two runs give identical bits', async () => {
      const input = heads(30, 3, 63, 60, 64);
      const a = await attentionBackward(
        ctx,
        input,
        0.2,
        Float32Array.from(heads(31, 3, 63, 64, 1).q),
      );
      const b = await attentionBackward(
        ctx,
        input,
        0.2,
        Float32Array.from(heads(31, 3, 63, 64, 1).q),
      );
      expect(Buffer.from(a.dk.buffer).equals(Buffer.from(b.dk.buffer))).toBe(true);
      expect(a.dscale).toBe(b.dscale);
    });
  });
}
