// Gated DeltaNet as a composition of tfjs ops (the webgpu route): outputs and all five tf.grads
// against @ovq/baselines' float64 reference on cpu (chunk edge cases, long T, correlated keys),
// then the public op and the GatedDeltaNet layer on webgpu.
import * as Bl from '@ovq/baselines';
import { createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { gatedDeltaNetComposite } from '../src/compositions/gated-deltanet.js';
import { GatedDeltaNet, gatedDeltaNet } from '../src/index.js';
import { randomTensor, tf, uniformTensor, useBackend } from './backends.js';
import { runCase } from './baseline-cases.js';
import { checkLayerStreamsAndTrains } from './layer-check.js';
import { checkMixer, type HeadRef, headSeq } from './mixer-check.js';
import { webGpuOrSkip } from './webgpu-setup.js';

type Dims = { B: number; H: number; T: number; dk: number; dv: number };

/**
 * checkMixer of the composition (chunk length `chunk`) against the float64 reference; `keys`
 * replaces the random keys, `alpha` / `beta` give the ranges of the per-token inputs.
 */
async function checkComposite(
  d: Dims,
  options: {
    chunk?: number;
    config?: Bl.GatedDeltaNetConfig;
    alpha?: [number, number];
    beta?: [number, number];
    keys?: (rng: () => number) => tf.Tensor;
    seed?: number;
  } = {},
): Promise<void> {
  const { B, H, T, dk, dv } = d;
  const { chunk = 64, config = {}, alpha = [0.6, 1], beta = [0.1, 1.5] } = options;
  const rng = createRng(options.seed ?? 5);
  const q = randomTensor(rng, [B, H, T, dk]);
  const k = options.keys ? options.keys(rng) : randomTensor(rng, [B, H, T, dk]);
  const v = randomTensor(rng, [B, H, T, dv]);
  const a = uniformTensor(rng, [d.B, d.H, d.T], ...alpha);
  const b = uniformTensor(rng, [d.B, d.H, d.T], ...beta);
  const dOut = randomTensor(rng, [B, H, T, dv]);
  const gdnSeq = (h: HeadRef) => ({ ...headSeq(h), alpha: h.extras[0], beta: h.extras[1] });
  await checkMixer(
    {
      name: `gdn composite B${B}-H${H}-T${T}-dk${dk}-dv${dv} C${chunk}`,
      batch: B,
      heads: H,
      seqLen: T,
      keyDim: dk,
      valueDim: dv,
      q,
      k,
      v,
      extras: [
        { tensor: a, kind: 'perToken' },
        { tensor: b, kind: 'perToken' },
      ],
      op: (q, k, v, al, be) => gatedDeltaNetComposite(q, k, v, al, be, config, chunk),
      forward: (h) => Bl.gatedDeltaNet(gdnSeq(h), config).output,
      backward: (h, dy) => {
        const g = Bl.gatedDeltaNetBackward(gdnSeq(h), config, dy);
        return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dAlpha, g.dBeta] };
      },
    },
    dOut,
  );
  tf.dispose([q, k, v, a, b, dOut]);
}

/** tf.profile peak bytes of one forward + backward (all five gradients) of the composition. */
async function peakBytes(d: Dims): Promise<number> {
  const rng = createRng(2);
  const q = randomTensor(rng, [d.B, d.H, d.T, d.dk]);
  const k = randomTensor(rng, [d.B, d.H, d.T, d.dk]);
  const v = randomTensor(rng, [d.B, d.H, d.T, d.dv]);
  const a = uniformTensor(rng, [d.B, d.H, d.T], 0.9, 1);
  const b = uniformTensor(rng, [d.B, d.H, d.T], 0.1, 1);
  const info = await tf.profile(() =>
    tf.tidy(() => {
      const grads = tf.grads((...x: tf.Tensor[]) =>
        tf.sum(gatedDeltaNetComposite(x[0], x[1], x[2], x[3], x[4], {})),
      )([q, k, v, a, b]);
      for (const g of grads) g.dataSync();
    }),
  );
  tf.dispose([q, k, v, a, b]);
  return info.peakBytes;
}

describe('gatedDeltaNetComposite on cpu', () => {
  beforeAll(() => useBackend('cpu'));

  it('baseline case (T37 in one padded chunk of 64) matches the float64 reference, no leaks', async () => {
    await runCase('gated deltanet', (q, k, v, a, b) => gatedDeltaNetComposite(q, k, v, a, b, {}));
  });

  it('baseline case with chunks of 8 (5 chunks, the last one partial) matches', async () => {
    await runCase('gated deltanet', (q, k, v, a, b) =>
      gatedDeltaNetComposite(q, k, v, a, b, {}, 8),
    );
  });

  it('T = 1 (a single token, chunk capped at 1)', async () => {
    await checkComposite({ B: 2, H: 3, T: 1, dk: 4, dv: 3 });
  });

  it('T = 300 with C = 64 (5 chunks, 20 padded tokens), dk 8 ≠ dv 5, explicit scale', async () => {
    await checkComposite({ B: 1, H: 2, T: 300, dk: 8, dv: 5 }, { config: { scale: 0.7 } });
  });

  it('T = 130 with C = 32, dv > dk, small α (fast decay: ln α sums to about −60 per chunk)', async () => {
    await checkComposite({ B: 2, H: 1, T: 130, dk: 3, dv: 7 }, { chunk: 32, alpha: [0.1, 0.3] });
  });

  it('correlated keys, β near 2, α near 1: the in-chunk inverse stays accurate', async () => {
    // All keys of a head lie close to one direction, so A has entries near β ≈ 2 everywhere below
    // the diagonal: the case where a power series for (I + A)⁻¹ loses float32 precision.
    const d = { B: 1, H: 2, T: 128, dk: 8, dv: 4 };
    const keys = (rng: () => number) =>
      tf.tidy(() => {
        const dir = randomTensor(rng, [d.B, d.H, 1, d.dk]);
        return tf.add(dir, tf.mul(randomTensor(rng, [d.B, d.H, d.T, d.dk]), 0.05));
      });
    await checkComposite(d, { keys, alpha: [0.97, 1], beta: [1.8, 2] });
  });

  it('rejects a bad config with the host op’s error, and a chunk length that is not a power of two', () => {
    const q = tf.ones([1, 1, 4, 2]);
    const g = tf.ones([1, 1, 4]);
    let hostError = '';
    try {
      gatedDeltaNet(q, q, q, g, g, { scale: -1 });
    } catch (error) {
      hostError = (error as Error).message;
    }
    expect(hostError).toMatch(/config.scale/);
    expect(() => gatedDeltaNetComposite(q, q, q, g, g, { scale: -1 })).toThrow(hostError);
    expect(() => gatedDeltaNetComposite(q, q, q, g, g, {}, 24)).toThrow(
      /chunkSize is 24; expected a power of two/,
    );
    tf.dispose([q, g]);
  });

  it('peak memory of forward + backward grows linearly in T (no T×T intermediate)', async () => {
    const small = await peakBytes({ B: 1, H: 1, T: 256, dk: 16, dv: 16 });
    const large = await peakBytes({ B: 1, H: 1, T: 1024, dk: 16, dv: 16 });
    // 4× the tokens: ≈ 4× the bytes when linear, 16× with a T×T matrix.
    expect(large / small).toBeLessThan(5);
  });
});

const reason = await webGpuOrSkip();

describe.skipIf(reason !== null)('gatedDeltaNet on webgpu (tfjs-op composition)', () => {
  beforeAll(async () => {
    await tf.setBackend('webgpu');
  });

  it('public op: baseline case matches the float64 reference (outputs, tf.grads), no leaks', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    await runCase('gated deltanet');
  });

  it('composition with chunks of 8 (the inter-chunk loop on the device) matches', async () => {
    await runCase('gated deltanet', (q, k, v, a, b) =>
      gatedDeltaNetComposite(q, k, v, a, b, {}, 8),
    );
  });

  it('rejects a bad config like the host op', () => {
    const q = tf.ones([1, 1, 4, 2]);
    const g = tf.ones([1, 1, 4]);
    expect(() => gatedDeltaNet(q, q, q, g, g, { scale: 0 })).toThrow(/config.scale/);
    tf.dispose([q, g]);
  });

  it('GatedDeltaNet layer: the webgpu call equals stepAsync (host streaming); a training step changes every weight and leaks nothing', async () => {
    const layer = new GatedDeltaNet({ heads: 2, keyDim: 4, outputGate: true, seed: 3 });
    await checkLayerStreamsAndTrains('webgpu GatedDeltaNet', layer);
  });
});
