// Key-Value Means as a composition of tfjs ops (src/compositions/kvm.ts) against the float64
// @ovq/baselines reference: on cpu (the composition called directly, so the host kernel is not
// involved) and on webgpu (through the public op, which dispatches to the composition there).
import * as Bl from '@ovq/baselines';
import { createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { kvmComposite } from '../src/compositions/kvm.js';
import { KvmAttention, kvmAttention } from '../src/index.js';
import { randomTensor, tf } from './backends.js';
import { runCase } from './baseline-cases.js';
import { checkLayerStreamsAndTrains } from './layer-check.js';
import { checkMixer, headSeq } from './mixer-check.js';
import { webGpuOrSkip } from './webgpu-setup.js';

const seq = headSeq;

type Shape = { batch: number; heads: number; seqLen: number; keyDim: number; valueDim: number };

/**
 * Keys with exact ties, B = W = 4, fixed budget 6, no sinks (letters: distinct random vectors):
 * block 0 [a a b c] → rows a a b c; block 1 [a g g c], 2 appends → the tied most novel g g become
 * rows 4, 5 (lower index first) and a merges into row 0 (rows 0 and 1 tie); block 2 [g h i j] →
 * g merges into row 4 (rows 4 and 5 tie); block 3 reads the result. A wrong tie order changes
 * which value each row holds. Only bitwise-identical values tie here: a near tie (a token close
 * to two rows that differ by rounding) is decided by rounding, in float32 and float64 alike.
 */
const tiePattern = [0, 0, 1, 2, 0, 3, 3, 2, 3, 4, 5, 6, 7, 8, 9, 10];
const tieConfig = { window: 4, beta: 3, budget: { kind: 'fixed', rows: 6 } } as const;

function tiedKeys(rng: () => number, batch: number, heads: number, dk: number): tf.Tensor {
  const T = tiePattern.length;
  const vectors = randomTensor(rng, [batch * heads, 11, dk]);
  const picks = Int32Array.from({ length: batch * heads * T }, (_, x) => tiePattern[x % T]);
  const k = tf.tidy(() =>
    tf.reshape(tf.gather(vectors, tf.tensor2d(picks, [batch * heads, T], 'int32'), 1, 1), [
      batch,
      heads,
      T,
      dk,
    ]),
  );
  vectors.dispose();
  return k;
}

/**
 * checkMixer of `op` (default: the composition) against the reference on fresh seeded inputs of
 * `shape` under `config`; `tiedKeys` takes the keys of tiePattern.
 */
async function checkComposite(
  name: string,
  shape: Shape,
  config: Bl.KvmConfig,
  seed: number,
  options: { tiedKeys?: boolean; op?: typeof kvmComposite } = {},
): Promise<void> {
  const rng = createRng(seed);
  const { batch, heads, seqLen: T, keyDim: dk, valueDim: dv } = shape;
  const op = options.op ?? kvmComposite;
  const q = randomTensor(rng, [batch, heads, T, dk]);
  const k = options.tiedKeys
    ? tiedKeys(rng, batch, heads, dk)
    : randomTensor(rng, [batch, heads, T, dk]);
  const v = randomTensor(rng, [batch, heads, T, dv]);
  const dOut = randomTensor(rng, [batch, heads, T, dv]);
  await checkMixer(
    {
      name,
      ...shape,
      q,
      k,
      v,
      extras: [],
      op: (q, k, v) => op(q, k, v, config),
      forward: (h) => Bl.kvmAttention(seq(h), config).output,
      backward: (h, dy) => ({ ...Bl.kvmAttentionBackward(seq(h), config, dy), extras: [] }),
    },
    dOut,
  );
  tf.dispose([q, k, v, dOut]);
}

const small = { batch: 2, heads: 2, seqLen: 37, keyDim: 6, valueDim: 5 };

describe('kvmComposite on cpu (tfjs ops, no host kernel)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('kvm (W8, B4, sqrt budget, 2 sinks) matches the float64 reference', async () => {
    await runCase('kvm (W8, B4, sqrt budget, 2 sinks)', (q, k, v) =>
      kvmComposite(q, k, v, {
        window: 8,
        blockSize: 4,
        beta: 3,
        budget: { kind: 'sqrt', scale: 1.5 },
        sinks: 2,
      }),
    );
  });

  const sqrt = { kind: 'sqrt', scale: 1.5 } as const;
  it.each<[string, Shape, Bl.KvmConfig]>([
    [
      'T = 1',
      { ...small, seqLen: 1 },
      { window: 4, blockSize: 2, beta: 3, budget: sqrt, sinks: 2 },
    ],
    [
      'T < sinks + window (no eviction)',
      { ...small, seqLen: 9 },
      { window: 8, blockSize: 4, beta: 3, budget: sqrt, sinks: 2 },
    ],
    [
      'T not a multiple of blockSize, no sinks',
      { ...small, seqLen: 23 },
      { window: 6, blockSize: 3, beta: 2, budget: sqrt, sinks: 0 },
    ],
    [
      'fixed budget 3 (merges once full), block = window',
      small,
      { window: 4, beta: 4, budget: { kind: 'fixed', rows: 3 }, sinks: 1 },
    ],
    [
      'saturating budget 6, sinks spanning two blocks',
      small,
      { window: 6, blockSize: 2, beta: 2.5, budget: { kind: 'saturating', rows: 6 }, sinks: 5 },
    ],
    [
      'fixed budget 1 (everything merges into one row)',
      { ...small, seqLen: 20 },
      { window: 4, blockSize: 4, beta: 3, budget: { kind: 'fixed', rows: 1 } },
    ],
    [
      'T = 203, W16 B4, sqrt budget, 3 sinks',
      { batch: 1, heads: 2, seqLen: 203, keyDim: 8, valueDim: 7 },
      { window: 16, blockSize: 4, beta: 4, budget: { kind: 'sqrt', scale: 2 }, sinks: 3 },
    ],
  ])(
    '%s matches the float64 reference (outputs, tf.grads), no leaks',
    async (name, shape, config) => {
      await checkComposite(name, shape, config, 21);
    },
  );

  it('exact ties in novelty and in merges go to the lowest index, as in the reference', async () => {
    const shape = { ...small, seqLen: tiePattern.length };
    await checkComposite('kvm exact ties', shape, tieConfig, 8, { tiedKeys: true });
  });

  it('memory grows linearly in T under a fixed budget (no [T, T] or per-eviction [T, d] tensor)', async () => {
    const config = {
      window: 16,
      blockSize: 4,
      beta: 3,
      budget: { kind: 'fixed', rows: 8 },
    } as const;
    const peak = async (T: number) => {
      const rng = createRng(4);
      const [q, k, v] = [0, 1, 2].map(() => randomTensor(rng, [1, 1, T, 8]));
      const profile = await tf.profile(() =>
        tf.tidy(() =>
          tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
            tf.sum(kvmComposite(a, b, c, config)),
          )([q, k, v]),
        ),
      );
      tf.dispose([q, k, v, ...(profile.result as tf.Tensor[])]);
      return profile.peakBytes;
    };
    // 4× the tokens: 4× the memory (a quadratic term would give up to 16×).
    expect((await peak(512)) / (await peak(128))).toBeLessThan(4.5);
  });

  it('peak memory of forward + backward at T = 1024 (B1 H2, dk = dv = 64, W64 B16, sqrt budget ×2) stays under 70 MiB', async () => {
    // Regression bound: 163 MiB when tfjs autodiff kept every logit and probability of the read
    // and every intermediate of every eviction (47 MiB with blockedSoftmaxRead and RowScan).
    const config = {
      window: 64,
      blockSize: 16,
      beta: 3,
      budget: { kind: 'sqrt', scale: 2 },
    } as const;
    const rng = createRng(5);
    const [q, k, v] = [0, 1, 2].map(() => randomTensor(rng, [1, 2, 1024, 64]));
    const info = await tf.profile(() =>
      tf.tidy(() => {
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) =>
          tf.sum(kvmComposite(a, b, c, config));
        tf.grads(f)([q, k, v]);
      }),
    );
    tf.dispose([q, k, v]);
    expect(info.peakBytes / 2 ** 20).toBeLessThan(70);
  });

  it('rejects a bad config with the host error', () => {
    const q = tf.zeros([1, 1, 4, 2]);
    const bad = { window: 6, blockSize: 4, beta: 1, budget: sqrt } as Bl.KvmConfig;
    expect(() => kvmComposite(q, q, q, bad)).toThrow(
      /config\.window: got 6; expected a multiple of config\.blockSize = 4/,
    );
    expect(() => kvmAttention(q, q, q, bad)).toThrow(
      /config\.window: got 6; expected a multiple of config\.blockSize = 4/,
    );
    q.dispose();
  });
});

const reason = await webGpuOrSkip();

describe.skipIf(reason !== null)('kvmAttention on webgpu (the composition)', () => {
  beforeAll(async () => {
    await tf.setBackend('webgpu');
  });

  it('kvm (W8, B4, sqrt budget, 2 sinks) matches the float64 reference through the public op', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    await runCase('kvm (W8, B4, sqrt budget, 2 sinks)');
  });

  it('exact ties in novelty and in merges go to the lowest index on webgpu too', async () => {
    const shape = { ...small, seqLen: tiePattern.length };
    await checkComposite('kvm exact ties on webgpu', shape, tieConfig, 8, {
      tiedKeys: true,
      op: kvmAttention,
    });
  });

  it('KvmAttention layer: the webgpu call equals stepAsync (host streaming); a training step updates every weight and leaks nothing', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    const layer = new KvmAttention({
      heads: 2,
      keyDim: 4,
      window: 4,
      blockSize: 2,
      beta: 3,
      budget: { kind: 'sqrt', scale: 1.5 },
      sinks: 1,
      outputGate: true,
      seed: 5,
    });
    await checkLayerStreamsAndTrains('webgpu KvmAttention', layer);
  });
});
