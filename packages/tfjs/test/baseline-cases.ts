// The baseline cases shared by the op tests (cpu, wasm, composite forms, webgpu): each mixer's op
// call and its float64 @ovq/baselines reference forward and backward.
import * as B from '@ovq/baselines';
import { createRng } from '@ovq/core/testing';
import {
  decayLinearAttention,
  gatedDeltaNet,
  kvmAttention,
  linearAttention,
  softmaxAttention,
  vqAttention,
} from '../src/index.js';
import { randomTensor, tf, uniformTensor } from './backends.js';
import { checkMixer, headSeq, type MixerCase } from './mixer-check.js';

export const [Bt, H, T, dk, dv] = [2, 2, 37, 6, 5];
const seq = headSeq;

export type Case = Omit<
  MixerCase,
  'batch' | 'heads' | 'seqLen' | 'keyDim' | 'valueDim' | 'q' | 'k' | 'v'
>;

/** The cases at sequence length `seqLen` (per-token extras are made that long). */
export function cases(rng: () => number, seqLen = T): Case[] {
  const swa = { window: 5, rope: { base: 10000 }, normalize: true, beta: 2 };
  const vq = { codebookSize: 4, blockLength: 8 };
  const vqCase = (name: string, config: B.VqConfig): Case => ({
    name,
    extras: [{ tensor: randomTensor(rng, [H, config.codebookSize, dk]), kind: 'perHead' }],
    op: (q, k, v, cb) => vqAttention(q, k, v, cb, config),
    forward: (h) => B.vqAttention({ ...seq(h), codebook: h.extras[0] }, config).output,
    backward: (h, dy) => {
      const g = B.vqAttentionBackward({ ...seq(h), codebook: h.extras[0] }, config, dy);
      return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dCodebook] };
    },
  });
  // Blocks of 4 in 37 tokens: most keys are read from the cache, where this option gives them
  // their share of the row's gradient.
  const vqCacheKeys = { codebookSize: 4, blockLength: 4, cacheKeyGradient: true };
  const kvm = {
    window: 8,
    blockSize: 4,
    beta: 3,
    budget: { kind: 'sqrt', scale: 1.5 },
    sinks: 2,
  } as const;
  return [
    {
      name: 'softmax SWA W5 + RoPE + normalise',
      extras: [],
      op: (q, k, v) => softmaxAttention(q, k, v, swa),
      forward: (h) => B.softmaxAttention(seq(h), swa).output,
      backward: (h, dy) => ({ ...B.softmaxAttentionBackward(seq(h), swa, dy), extras: [] }),
    },
    {
      name: 'softmax full, default β',
      extras: [],
      op: (q, k, v) => softmaxAttention(q, k, v),
      forward: (h) => B.softmaxAttention(seq(h)).output,
      backward: (h, dy) => ({ ...B.softmaxAttentionBackward(seq(h), undefined, dy), extras: [] }),
    },
    {
      name: 'linear',
      extras: [],
      op: (q, k, v) => linearAttention(q, k, v),
      forward: (h) => B.linearAttention(seq(h)).output,
      backward: (h, dy) => ({ ...B.linearAttentionBackward(seq(h), undefined, dy), extras: [] }),
    },
    {
      name: 'decay linear',
      extras: [{ tensor: uniformTensor(rng, [Bt, H, seqLen], 0.5, 1), kind: 'perToken' }],
      op: (q, k, v, a) => decayLinearAttention(q, k, v, a, { scale: 0.5 }),
      forward: (h) =>
        B.decayLinearAttention({ ...seq(h), decay: h.extras[0] }, { scale: 0.5 }).output,
      backward: (h, dy) => {
        const g = B.decayLinearAttentionBackward(
          { ...seq(h), decay: h.extras[0] },
          { scale: 0.5 },
          dy,
        );
        return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dDecay] };
      },
    },
    {
      name: 'gated deltanet',
      extras: [
        { tensor: uniformTensor(rng, [Bt, H, seqLen], 0.6, 1), kind: 'perToken' },
        { tensor: uniformTensor(rng, [Bt, H, seqLen], 0.1, 1.5), kind: 'perToken' },
      ],
      op: (q, k, v, a, b) => gatedDeltaNet(q, k, v, a, b),
      forward: (h) => B.gatedDeltaNet({ ...seq(h), alpha: h.extras[0], beta: h.extras[1] }).output,
      backward: (h, dy) => {
        const g = B.gatedDeltaNetBackward(
          { ...seq(h), alpha: h.extras[0], beta: h.extras[1] },
          undefined,
          dy,
        );
        return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dAlpha, g.dBeta] };
      },
    },
    vqCase('vq (S4, L8)', vq),
    vqCase('vq with cacheKeyGradient (S4, L4)', vqCacheKeys),
    {
      name: 'kvm (W8, B4, sqrt budget, 2 sinks)',
      extras: [],
      op: (q, k, v) => kvmAttention(q, k, v, kvm),
      forward: (h) => B.kvmAttention(seq(h), kvm).output,
      backward: (h, dy) => ({ ...B.kvmAttentionBackward(seq(h), kvm, dy), extras: [] }),
    },
  ];
}

/** Runs `checkMixer` on case `name` with fresh seeded inputs; `op` replaces the case's op. */
export async function runCase(name: string, op?: Case['op'], seqLen = T): Promise<void> {
  const rng = createRng(11);
  const c = cases(rng, seqLen).find((x) => x.name === name);
  if (!c) throw new Error(`no baseline case named ${name}`);
  const q = randomTensor(rng, [Bt, H, seqLen, dk]);
  const k = randomTensor(rng, [Bt, H, seqLen, dk]);
  const v = randomTensor(rng, [Bt, H, seqLen, dv]);
  const dOut = randomTensor(rng, [Bt, H, seqLen, dv]);
  await checkMixer(
    { ...c, op: op ?? c.op, batch: Bt, heads: H, seqLen, keyDim: dk, valueDim: dv, q, k, v },
    dOut,
  );
  tf.dispose([q, k, v, dOut, ...c.extras.map((e) => e.tensor)]);
}
