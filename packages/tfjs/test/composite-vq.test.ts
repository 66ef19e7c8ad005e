// Transformer-VQ attention as a composition of tfjs ops (the webgpu route): against the float64
// @ovq/baselines reference (outputs and tf.grads for q, k, v, codebook) on cpu, and through the
// public op and the VqAttention layer on webgpu.
import * as Base from '@ovq/baselines';
import { createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { vqComposite } from '../src/compositions/index.js';
import { blockedSoftmaxRead } from '../src/compositions/shared.js';
import { VqAttention, vqAttention } from '../src/index.js';
import { randomTensor, tf } from './backends.js';
import { runCase } from './baseline-cases.js';
import { checkLayerStreamsAndTrains } from './layer-check.js';
import { checkMixer } from './mixer-check.js';
import { webGpuOrSkip } from './webgpu-setup.js';

type Dims = { batch: number; heads: number; seqLen: number; keyDim: number; valueDim: number };
type Op = (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, cb: tf.Tensor, c: Base.VqConfig) => tf.Tensor;

/** checkMixer on seeded inputs; `codebook` may shape the codebook (unused or duplicate codes). */
async function checkVq(
  name: string,
  d: Dims,
  config: Base.VqConfig,
  op: Op,
  codebook: (cb: Float32Array) => void = () => {},
): Promise<void> {
  const rng = createRng(23);
  const { batch, heads, seqLen, keyDim, valueDim } = d;
  const q = randomTensor(rng, [batch, heads, seqLen, keyDim]);
  const k = randomTensor(rng, [batch, heads, seqLen, keyDim]);
  const v = randomTensor(rng, [batch, heads, seqLen, valueDim]);
  const dOut = randomTensor(rng, [batch, heads, seqLen, valueDim]);
  const raw = randomTensor(rng, [heads, config.codebookSize, keyDim]);
  const values = (await raw.data()) as Float32Array;
  codebook(values);
  const cb = tf.tensor(values, raw.shape);
  await checkMixer(
    {
      name,
      ...d,
      q,
      k,
      v,
      extras: [{ tensor: cb, kind: 'perHead' }],
      op: (q, k, v, c) => op(q, k, v, c, config),
      forward: (h) => Base.vqAttention({ ...h, codebook: h.extras[0] }, config).output,
      backward: (h, dy) => {
        const g = Base.vqAttentionBackward({ ...h, codebook: h.extras[0] }, config, dy);
        return { dq: g.dq, dk: g.dk, dv: g.dv, extras: [g.dCodebook] };
      },
    },
    dOut,
  );
  tf.dispose([q, k, v, dOut, raw, cb]);
}

/** Moves codes `from`…`to − 1` of every head far from every key: they are never chosen. */
const farCodes = (S: number, dk: number, from: number, to: number) => (cb: Float32Array) => {
  for (let h = 0; h < cb.length / (S * dk); h++) {
    for (let j = from; j < to; j++) cb.fill(50 + j, (h * S + j) * dk, (h * S + j + 1) * dk);
  }
};

/** Copies code 0 of every head into code `to`: every key nearest to it ties (lowest index wins). */
const duplicateCode = (S: number, dk: number, to: number) => (cb: Float32Array) => {
  for (let h = 0; h < cb.length / (S * dk); h++) {
    cb.copyWithin((h * S + to) * dk, h * S * dk, (h * S + 1) * dk);
  }
};

const dims = (seqLen: number, keyDim = 6, valueDim = 5): Dims => ({
  batch: 2,
  heads: 2,
  seqLen,
  keyDim,
  valueDim,
});

const edgeCases: [string, Dims, Base.VqConfig, ((cb: Float32Array) => void)?][] = [
  ['T = 1', dims(1), { codebookSize: 4, blockLength: 8 }],
  ['T = 2L exactly (no cache yet)', dims(16), { codebookSize: 4, blockLength: 8 }],
  ['T = 2L + 1 (first cached token)', dims(9), { codebookSize: 3, blockLength: 4, beta: 0.8 }],
  [
    'T = 301, L = 16 (not a multiple), S = 16, dk 8 ≠ dv 3',
    dims(301, 8, 3),
    { codebookSize: 16, blockLength: 16 },
  ],
  [
    'T = 70, S = 8 with codes 3…6 never used',
    dims(70, 4, 6),
    { codebookSize: 8, blockLength: 5, beta: 1.5 },
    farCodes(8, 4, 3, 7),
  ],
  [
    'T = 50, S = 40 with a duplicate code (tie rule)',
    dims(50, 3, 4),
    { codebookSize: 40, blockLength: 6 },
    duplicateCode(40, 3, 33),
  ],
  ['T = 12, L = 1 (every older token cached)', dims(12), { codebookSize: 5, blockLength: 1 }],
  [
    'cacheKeyGradient, T = 12, L = 1',
    dims(12),
    { codebookSize: 5, blockLength: 1, cacheKeyGradient: true },
  ],
  [
    'cacheKeyGradient, T = 301, L = 16, S = 16, dk 8 ≠ dv 3',
    dims(301, 8, 3),
    { codebookSize: 16, blockLength: 16, cacheKeyGradient: true },
  ],
  [
    'cacheKeyGradient, T = 70, S = 8 with codes 3…6 never used',
    dims(70, 4, 6),
    { codebookSize: 8, blockLength: 5, beta: 1.5, cacheKeyGradient: true },
    farCodes(8, 4, 3, 7),
  ],
];

describe('vq composition on cpu (the webgpu route)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('vq (S4, L8) matches the float64 reference (outputs, tf.grads), no leaks', async () => {
    await runCase('vq (S4, L8)', (q, k, v, cb) =>
      vqComposite(q, k, v, cb, { codebookSize: 4, blockLength: 8 }),
    );
  });

  it.each(edgeCases)('%s: matches the float64 reference, no leaks', async (name, d, config, cb) => {
    await checkVq(`vq composite ${name}`, d, config, vqComposite, cb);
  });

  it('rejects an invalid config with the host op’s error', () => {
    const q = tf.zeros([1, 1, 4, 2]);
    const cb = tf.zeros([1, 2, 2]);
    const messageOf = (f: () => unknown) => {
      try {
        f();
      } catch (error) {
        return (error as Error).message;
      }
      throw new Error('expected a throw');
    };
    for (const config of [
      { codebookSize: 2, blockLength: 0 },
      { codebookSize: 2, blockLength: 2.5 },
      { codebookSize: 2, beta: -1 },
    ]) {
      const host = messageOf(() => vqAttention(q, q, q, cb, config)); // cpu: the host kernel
      expect(host).toMatch(/config\.(blockLength|beta)/);
      expect(messageOf(() => vqComposite(q, q, q, cb, config))).toBe(host);
    }
    tf.dispose([q, cb]);
  });

  it('peak memory of forward + backward grows linearly in T (no T×T matrix)', async () => {
    const peak = async (T: number) => {
      const rng = createRng(5);
      const q = randomTensor(rng, [1, 2, T, 16]);
      const cb = randomTensor(rng, [2, 16, 16]);
      const config = { codebookSize: 16, blockLength: 16 };
      const info = await tf.profile(() =>
        tf.tidy(() => {
          const f = (q: tf.Tensor, cb: tf.Tensor) => tf.sum(vqComposite(q, q, q, cb, config));
          tf.grads(f)([q, cb]);
        }),
      );
      tf.dispose([q, cb]);
      return info.peakBytes;
    };
    const [small, large] = [await peak(512), await peak(1024)];
    // A [T, T] score matrix would make this ratio close to 4.
    expect(large / small).toBeLessThan(2.3);
  });

  it('peak memory of forward + backward at T = 1024 (B1 H2, dk = dv = 64, S64 L64) stays under 40 MiB', async () => {
    // Regression bound: 75 MiB when tfjs autodiff kept every logit and probability of the read
    // (25 MiB with the recomputing blockedSoftmaxRead).
    const rng = createRng(5);
    const [q, k, v] = [0, 1, 2].map(() => randomTensor(rng, [1, 2, 1024, 64]));
    const cb = randomTensor(rng, [2, 64, 64]);
    const config = { codebookSize: 64, blockLength: 64 };
    const info = await tf.profile(() =>
      tf.tidy(() => {
        const f = (a: tf.Tensor, b: tf.Tensor, c: tf.Tensor, d: tf.Tensor) =>
          tf.sum(vqComposite(a, b, c, d, config));
        tf.grads(f)([q, k, v, cb]);
      }),
    );
    tf.dispose([q, k, v, cb]);
    expect(info.peakBytes / 2 ** 20).toBeLessThan(40);
  });
});

/** RMS(a − b) / RMS(b). */
async function rmsRatio(a: tf.Tensor, b: tf.Tensor): Promise<number> {
  const [x, y] = [(await a.data()) as Float32Array, (await b.data()) as Float32Array];
  let num = 0;
  let den = 0;
  for (let i = 0; i < y.length; i++) {
    num += (x[i] - y[i]) ** 2;
    den += y[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/**
 * blockedSoftmaxRead against tfjs autodiff of one softmax over the concatenated key sets: nB blocks
 * (first axis) of 8 queries against 8 + 8 + 5 keys (per-block, shifted and shared segments with
 * biases), in groups of `groupElements` logits.
 */
async function checkBlockedRead(nB: number, groupElements?: number): Promise<void> {
  const rng = createRng(31);
  const [N, Lq, dk, dv, n, nShared, beta] = [2, 8, 4, 3, 8, 5, 0.7];
  const q = randomTensor(rng, [nB, N, Lq, dk]);
  const keys = randomTensor(rng, [nB, N, n, dk]);
  const values = randomTensor(rng, [nB, N, n, dv]);
  const sharedKeys = randomTensor(rng, [1, N, nShared, dk]);
  const sharedValues = randomTensor(rng, [1, N, nShared, dv]);
  const prior = randomTensor(rng, [nB, N, 1, nShared]); // a per-block prior, as VQ's log-counts
  // Causal within the block; the shifted (previous) block hidden for block 0.
  const causal = tf.tensor4d(
    Float32Array.from({ length: Lq * n }, (_, x) => (x % n <= Math.floor(x / n) ? 0 : -Infinity)),
    [1, 1, Lq, n],
  );
  const firstHidden = tf.tensor4d(
    Float32Array.from({ length: nB }, (_, b) => (b === 0 ? -Infinity : 0)),
    [nB, 1, 1, 1],
  );
  const dOut = randomTensor(rng, [nB, N, Lq, dv]);
  const inputs = [q, keys, values, sharedKeys, sharedValues, prior];
  const fast = (
    qq: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    ks: tf.Tensor,
    vs: tf.Tensor,
    pr: tf.Tensor,
  ) =>
    blockedSoftmaxRead(
      qq,
      [
        { keys: k, values: v, bias: causal },
        { keys: k, values: v, bias: firstHidden, shift: 1 },
        { keys: ks, values: vs, bias: pr },
      ],
      beta,
      groupElements,
    );
  const reference = (
    qq: tf.Tensor,
    k: tf.Tensor,
    v: tf.Tensor,
    ks: tf.Tensor,
    vs: tf.Tensor,
    pr: tf.Tensor,
  ) => {
    const previous = (x: tf.Tensor) =>
      tf.pad(tf.slice(x, [0, 0, 0, 0], [nB - 1, -1, -1, -1]), [
        [1, 0],
        [0, 0],
        [0, 0],
        [0, 0],
      ]);
    const allKeys = tf.concat([k, previous(k), tf.tile(ks, [nB, 1, 1, 1])], 2);
    const allValues = tf.concat([v, previous(v), tf.tile(vs, [nB, 1, 1, 1])], 2);
    const bias = tf.concat(
      [
        tf.broadcastTo(causal, [nB, N, Lq, n]),
        tf.broadcastTo(firstHidden, [nB, N, Lq, n]),
        tf.broadcastTo(pr, [nB, N, Lq, nShared]),
      ],
      3,
    );
    const logits = tf.add(tf.mul(tf.matMul(qq, allKeys, false, true), beta), bias);
    return tf.matMul(tf.softmax(logits), allValues);
  };
  const count = tf.memory().numTensors;
  const run = (f: typeof fast) =>
    tf.tidy(() => {
      const out = f(
        ...(inputs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]),
      );
      const grads = tf.grads((...xs: tf.Tensor[]) =>
        tf.sum(
          tf.mul(
            f(...(xs as [tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor])),
            dOut,
          ),
        ),
      )(inputs);
      return [out, ...grads];
    });
  const got = run(fast);
  expect(tf.memory().numTensors).toBe(count + got.length);
  const want = run(reference);
  const names = ['output', 'dq', 'dkeys', 'dvalues', 'dsharedKeys', 'dsharedValues', 'dprior'];
  for (const [i, name] of names.entries()) {
    expect(got[i].shape, name).toEqual(want[i].shape);
    const values = (await got[i].data()) as Float32Array;
    expect(values.every(Number.isFinite), `${name} finite`).toBe(true);
    expect(await rmsRatio(got[i], want[i]), name).toBeLessThan(1e-5);
  }
  tf.dispose([...inputs, causal, firstHidden, dOut, ...got, ...want]);
}

describe('blockedSoftmaxRead (the read shared by the VQ and KVM compositions)', () => {
  beforeAll(async () => {
    await tf.setBackend('cpu');
  });

  it('equals tfjs autodiff of one softmax over the concatenated key sets: per-block, shifted and shared segments, biases, three groups of blocks', async () => {
    await checkBlockedRead(700);
  });
});

const reason = await webGpuOrSkip();

describe.skipIf(reason !== null)('vq composition on webgpu', () => {
  beforeAll(async () => {
    await tf.setBackend('webgpu');
  });

  it('blockedSoftmaxRead in 12 groups equals tfjs autodiff (its gradient sums 12 pieces of a shared segment: no addN wider than the adapter allows)', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    await checkBlockedRead(12, 2 * 8 * 21); // one block per group
    // On SwiftShader (CPU) its many shader compilations once took over 120 s on a shared machine
    // (the suite default): a timeout there says nothing about the kernels.
  }, 300_000);

  it('vq (S4, L8) through vqAttention matches the float64 reference, no leaks', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    await runCase('vq (S4, L8)');
  });

  it('S = 40 with a duplicate code: the tie goes to the lowest index as on cpu', async () => {
    expect(tf.getBackend()).toBe('webgpu');
    const [name, d, config, cb] = edgeCases[5];
    await checkVq(`vq webgpu ${name}`, d, config, vqAttention, cb);
  });

  it('VqAttention layer: the webgpu call equals stepAsync (host streaming); a training step updates every trainable weight and leaks nothing', async () => {
    const layer = new VqAttention({
      heads: 2,
      keyDim: 4,
      codebookSize: 4,
      blockLength: 3,
      outputGate: true,
      seed: 1,
    });
    await checkLayerStreamsAndTrains('webgpu VqAttention', layer, { seed: 3 });
    expect(layer.nonTrainableWeights.map((w) => w.name.split('/').pop())).toEqual([
      'code_sums',
      'code_counts',
    ]);
  });
});
