// The memory-lean compositions of softmax / SWA, linear and decay-linear attention (the webgpu
// route): against the float64 @ovq/baselines reference at sizes that cross block and chunk
// boundaries, a peak-memory regression check, and the public ops on webgpu.
import * as Ref from '@ovq/baselines';
import { createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { DECAY_CHUNK, decayLinearComposite } from '../src/compositions/decay-linear.js';
import { LINEAR_CHUNK, linearComposite } from '../src/compositions/linear.js';
import { SOFTMAX_BLOCK, softmaxComposite } from '../src/compositions/softmax.js';
import { decayLinearAttention, linearAttention, softmaxAttention } from '../src/index.js';
import { randomTensor, tf, uniformTensor, useBackend } from './backends.js';
import { checkMixer, headSeq, type MixerCase } from './mixer-check.js';
import { webGpuOrSkip } from './webgpu-setup.js';

type Sizes = { batch: number; heads: number; seqLen: number; keyDim: number; valueDim: number };
type Mixer = Pick<MixerCase, 'name' | 'op' | 'forward' | 'backward'> & {
  /** Per-token extra input (the decay) drawn uniformly from (lo, hi). */
  decay?: [number, number];
};

const seq = headSeq;

function softmaxMixer(
  config: Ref.SoftmaxConfig,
  op: typeof softmaxComposite = softmaxComposite,
): Mixer {
  return {
    name: `softmax ${JSON.stringify(config)}`,
    op: (q, k, v) => op(q, k, v, config),
    forward: (h) => Ref.softmaxAttention(seq(h), config).output,
    backward: (h, dy) => ({ ...Ref.softmaxAttentionBackward(seq(h), config, dy), extras: [] }),
  };
}

function linearMixer(config: Ref.LinearConfig, op: typeof linearComposite = linearComposite) {
  return {
    name: `linear ${JSON.stringify(config)}`,
    op: (q, k, v) => op(q, k, v, config),
    forward: (h) => Ref.linearAttention(seq(h), config).output,
    backward: (h, dy) => ({ ...Ref.linearAttentionBackward(seq(h), config, dy), extras: [] }),
  } satisfies Mixer;
}

function decayMixer(
  config: Ref.DecayLinearConfig,
  decay: [number, number],
  op: typeof decayLinearComposite = decayLinearComposite,
): Mixer {
  return {
    name: `decay linear ${JSON.stringify(config)}, decay in (${decay})`,
    decay,
    op: (q, k, v, a) => op(q, k, v, a, config),
    forward: (h) => Ref.decayLinearAttention({ ...seq(h), decay: h.extras[0] }, config).output,
    backward: (h, dy) => {
      const g = Ref.decayLinearAttentionBackward({ ...seq(h), decay: h.extras[0] }, config, dy);
      return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dDecay] };
    },
  };
}

/** checkMixer on seeded inputs of the given sizes. */
async function check(m: Mixer, s: Sizes, seed = 5): Promise<void> {
  const rng = createRng(seed);
  const { batch: B, heads: H, seqLen: T, keyDim: dk, valueDim: dv } = s;
  const q = randomTensor(rng, [B, H, T, dk]);
  const k = randomTensor(rng, [B, H, T, dk]);
  const v = randomTensor(rng, [B, H, T, dv]);
  const dOut = randomTensor(rng, [B, H, T, dv]);
  const extras: MixerCase['extras'] = [];
  if (m.decay) {
    const [lo, hi] = m.decay;
    extras.push({ tensor: uniformTensor(rng, [B, H, T], lo, hi), kind: 'perToken' });
  }
  await checkMixer({ ...m, ...s, q, k, v, extras }, dOut);
  tf.dispose([q, k, v, dOut, ...extras.map((e) => e.tensor)]);
}

const SEQ_LENS = [1, 37, 200];
const sizes = (T: number): Sizes => ({ batch: 2, heads: 2, seqLen: T, keyDim: 8, valueDim: 5 });
const rope = { base: 10000 };

const softmaxConfigs: Ref.SoftmaxConfig[] = [
  {},
  { rope, normalize: true, beta: 2 },
  ...[1, 5, 64, 100].flatMap((window) => [{ window }, { window, rope, normalize: true, beta: 3 }]),
];

describe('composite attention on cpu against the float64 reference (outputs, every tf.grad, no leaks)', () => {
  beforeAll(() => useBackend('cpu'));

  it('T = 200 crosses at least two block / chunk boundaries of each composition', () => {
    for (const size of [SOFTMAX_BLOCK, LINEAR_CHUNK, DECAY_CHUNK])
      expect(size).toBeLessThan(200 / 2);
  });

  for (const T of SEQ_LENS) {
    it.each(softmaxConfigs.map((c) => [JSON.stringify(c), c] as const))(
      `softmax %s, B2-H2-T${T}-dk8-dv5`,
      async (_, config) => {
        await check(softmaxMixer(config), sizes(T));
      },
    );

    it(`linear (default eps and eps 0.5), B2-H2-T${T}-dk8-dv5`, async () => {
      // At T = 1 the output is v·(1 − O(eps)): dq is of the order of eps, below float32's reach.
      if (T > 1) await check(linearMixer({}), sizes(T));
      await check(linearMixer({ eps: 0.5 }), sizes(T), 6);
    });

    it(`decay linear (mild and strong decay), B2-H2-T${T}-dk8-dv5`, async () => {
      await check(decayMixer({ scale: 0.5 }, [0.5, 1]), sizes(T));
      // ln a down to −4.6: a chunk's total decay underflows to 0 in float32.
      await check(decayMixer({}, [0.01, 1]), sizes(T), 7);
    });
  }
});

describe('composite attention memory (cpu, tf.profile of forward + backward)', () => {
  beforeAll(() => useBackend('cpu'));
  const [B, H, T, d] = [1, 2, 2048, 16];
  // One float32 [T, T] matrix per [batch, head]: what the old compositions held several times.
  const squareBytes = B * H * T * T * 4;

  it.each([
    ['softmax (full)', (q, k, v) => softmaxComposite(q, k, v, {})],
    [
      'softmax (SWA W100 + RoPE + normalise)',
      (q, k, v) => softmaxComposite(q, k, v, { window: 100, rope, normalize: true }),
    ],
    ['linear', (q, k, v) => linearComposite(q, k, v, {})],
    ['decay linear', (q, k, v, a) => decayLinearComposite(q, k, v, a, {})],
  ] as [string, MixerCase['op']][])(
    `%s at B${B}-H${H}-T${T}-dk${d}-dv${d} peaks below one [T, T] float32 matrix per head (${squareBytes} bytes)`,
    async (_, op) => {
      const rng = createRng(9);
      const q = randomTensor(rng, [B, H, T, d]);
      const k = randomTensor(rng, [B, H, T, d]);
      const v = randomTensor(rng, [B, H, T, d]);
      const a = tf.fill([B, H, T], 0.9);
      // Gradients for the inputs the op uses (the decay only for decay linear).
      const inputs = op.length === 4 ? [q, k, v, a] : [q, k, v];
      const before = tf.memory().numTensors;
      const info = await tf.profile(() => {
        const grads = tf.grads((...xs: tf.Tensor[]) => tf.sum(op(xs[0], xs[1], xs[2], a)))(inputs);
        tf.dispose(grads);
      });
      expect(tf.memory().numTensors).toBe(before);
      expect(info.peakBytes).toBeLessThan(squareBytes);
      tf.dispose([q, k, v, a]);
    },
  );
});

const reason = await webGpuOrSkip();

describe.skipIf(reason !== null)('composite attention through the public ops on webgpu', () => {
  beforeAll(async () => {
    await tf.setBackend('webgpu');
  });
  // Above the softmax block and the linear / decay-linear chunk sizes.
  const T = Math.max(SOFTMAX_BLOCK, LINEAR_CHUNK, DECAY_CHUNK) + 13;
  const s: Sizes = { batch: 1, heads: 2, seqLen: T, keyDim: 6, valueDim: 4 };

  it.each([
    softmaxMixer({ window: 40, rope, normalize: true, beta: 2 }, softmaxAttention),
    linearMixer({}, linearAttention),
    decayMixer({ scale: 0.5 }, [0.5, 1], decayLinearAttention),
  ])(`$name at B1-H2-T${T}-dk6-dv4 matches the float64 reference`, async (m) => {
    expect(tf.getBackend()).toBe('webgpu');
    await check(m, s);
  });
});
