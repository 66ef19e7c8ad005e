import { ovqAttentionReference } from '@ovq/core';
import { assertClose, createRng } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DecayLinearAttention,
  GatedDeltaNet,
  KvmAttention,
  LinearAttention,
  type MixerLayer,
  OvqAttention,
  SoftmaxAttention,
  VqAttention,
} from '../src/index.js';
import { randomTensor, tf, useBackend } from './backends.js';

const [B, T, D] = [2, 21, 12];
const small = { heads: 2, keyDim: 4, seed: 6 };

type Factory = { name: string; make: () => MixerLayer<unknown> };

/** A small gated OVQ layer; `outputNorm` and the seed vary between the two factories. */
const gatedOvq = (seed: number, outputNorm: boolean) =>
  new OvqAttention({
    heads: 2,
    keyDim: 4,
    valueDim: 3,
    chunkSize: 4,
    capacity: 6,
    outputGate: true,
    outputNorm,
    seed,
  }) as MixerLayer<unknown>;

const factories: Factory[] = [
  { name: 'OvqAttention', make: () => gatedOvq(1, false) },
  { name: 'OvqAttention (outputNorm and gate)', make: () => gatedOvq(11, true) },
  {
    name: 'OvqAttention (novelty spawn)',
    make: () =>
      new OvqAttention({
        heads: 2,
        keyDim: 4,
        chunkSize: 4,
        capacity: 6,
        spawnDistance: 0.5,
        seed: 12,
      }) as MixerLayer<unknown>,
  },
  {
    name: 'SoftmaxAttention (SWA W4 + RoPE)',
    make: () =>
      new SoftmaxAttention({
        heads: 2,
        keyDim: 4,
        window: 4,
        ropeBase: 10000,
        seed: 2,
      }) as MixerLayer<unknown>,
  },
  {
    name: 'SoftmaxAttention (full, normalised, gated)',
    make: () =>
      new SoftmaxAttention({
        heads: 2,
        keyDim: 4,
        normalize: true,
        beta: 3,
        outputGate: true,
        seed: 3,
      }) as MixerLayer<unknown>,
  },
  {
    name: 'LinearAttention',
    make: () =>
      new LinearAttention({ heads: 2, keyDim: 4, valueDim: 5, seed: 4 }) as MixerLayer<unknown>,
  },
  {
    name: 'DecayLinearAttention',
    make: () => new DecayLinearAttention({ heads: 3, keyDim: 4, seed: 5 }) as MixerLayer<unknown>,
  },
  {
    name: 'GatedDeltaNet',
    make: () => new GatedDeltaNet({ heads: 2, keyDim: 4, seed: 6 }) as MixerLayer<unknown>,
  },
  {
    name: 'GatedDeltaNet (outputNorm)',
    make: () =>
      new GatedDeltaNet({ heads: 2, keyDim: 4, seed: 6, outputNorm: true }) as MixerLayer<unknown>,
  },
  {
    name: 'VqAttention',
    make: () =>
      new VqAttention({
        heads: 2,
        keyDim: 4,
        codebookSize: 5,
        blockLength: 4,
        seed: 7,
      }) as MixerLayer<unknown>,
  },
  {
    name: 'VqAttention (cacheKeyGradient)',
    make: () =>
      new VqAttention({
        heads: 2,
        keyDim: 4,
        codebookSize: 5,
        blockLength: 2,
        cacheKeyGradient: true,
        seed: 7,
      }) as MixerLayer<unknown>,
  },
  {
    name: 'KvmAttention',
    make: () =>
      new KvmAttention({
        heads: 2,
        keyDim: 4,
        window: 4,
        blockSize: 2,
        budget: { kind: 'sqrt', scale: 1 },
        sinks: 1,
        seed: 8,
      }) as MixerLayer<unknown>,
  },
];

async function roundTrip(model: tf.LayersModel): Promise<tf.LayersModel> {
  let saved: tf.io.ModelArtifacts | undefined;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  return tf.loadLayersModel(tf.io.fromMemory(saved!));
}

describe.each(factories)('$name layer', ({ make }) => {
  beforeAll(() => useBackend('cpu'));

  it('save → load round trip gives identical outputs and config', async () => {
    const layer = make();
    const input = tf.input({ shape: [null, D] });
    const model = tf.model({ inputs: input, outputs: layer.apply(input) as tf.SymbolicTensor });
    const x = randomTensor(createRng(3), [B, T, D]);
    const y = model.predict(x) as tf.Tensor;
    const loaded = await roundTrip(model);
    const y2 = loaded.predict(x) as tf.Tensor;
    expect(Array.from(y2.dataSync())).toEqual(Array.from(y.dataSync()));
    expect(loaded.layers[1].getConfig()).toEqual(layer.getConfig());
    tf.dispose([x, y, y2]);
    model.dispose();
    loaded.dispose();
  });

  it('step over the sequence (pieces 1, 5, 1, 14 tokens) equals the full-sequence call', () => {
    const layer = make();
    const x = randomTensor(createRng(4), [B, T, D]);
    const full = layer.apply(x) as tf.Tensor;
    const state = layer.createState(B);
    const count = tf.memory().numTensors;
    const pieces: tf.Tensor[] = [];
    let at = 0;
    for (const n of [1, 5, 1, 14]) {
      const xs = tf.slice(x, [0, at, 0], [B, n, D]);
      pieces.push(layer.step(xs, state));
      xs.dispose();
      at += n;
    }
    // Each step leaves only its output behind.
    expect(tf.memory().numTensors).toBe(count + pieces.length);
    const streamed = tf.concat(pieces, 1);
    assertClose('step vs call', full.dataSync(), streamed.dataSync(), 1e-5);
    expect(state.position).toBe(T);
    expect(layer.stateSize(T)).toBeGreaterThan(0);
    tf.dispose([x, full, streamed, ...pieces]);
  });
});

describe.each(factories)('$name layer: training step', ({ make }) => {
  beforeAll(() => useBackend('cpu'));

  it('an optimizer step updates every trainable weight and leaks no tensor', () => {
    const layer = make();
    const x = randomTensor(createRng(5), [B, T, D]);
    (layer.apply(x) as tf.Tensor).dispose();
    // Trainable weights only: VQ's codebook statistics move by EMA k-means, not by the optimizer.
    const before = layer.trainableWeights.map((w) => w.read().dataSync().slice());
    const optimizer = tf.train.adam(1e-2);
    const count = tf.memory().numTensors;
    for (let i = 0; i < 2; i++) {
      optimizer.minimize(() => tf.mean(tf.square(layer.apply(x) as tf.Tensor)) as tf.Scalar);
    }
    // Adam creates its two moment slots per weight on the first step; nothing else may remain.
    expect(tf.memory().numTensors - count).toBe(2 * layer.trainableWeights.length);
    layer.trainableWeights.forEach((w, i) => {
      expect(Array.from(w.read().dataSync())).not.toEqual(Array.from(before[i]));
    });
    optimizer.dispose();
    x.dispose();
  });
});

describe('streaming state and OVQ dictionary health', () => {
  beforeAll(() => useBackend('cpu'));

  it('OVQ state stays bounded while a long stream grows; health adds up', () => {
    const layer = new OvqAttention({ heads: 2, keyDim: 4, chunkSize: 8, capacity: 10, seed: 9 });
    const x = randomTensor(createRng(6), [1, 203, D]);
    (layer.apply(tf.slice(x, [0, 0, 0], [1, 8, D])) as tf.Tensor).dispose();
    const health = layer.dictionaryHealthOf(x as tf.Tensor3D);
    expect(health).toHaveLength(2);
    for (const h of health) {
      expect(h.size).toBeLessThanOrEqual(10);
      expect(h.capacity).toBe(10);
      expect(h.tokensAbsorbed).toBe(200);
      expect(h.pending).toBe(3);
      expect(h.countMean * h.size).toBeCloseTo(200, 9);
      expect(h.countMin).toBeGreaterThanOrEqual(1);
      expect(h.countMax).toBeGreaterThanOrEqual(h.countMean);
      expect(h.neverUpdated).toBeLessThanOrEqual(h.size);
      expect(h.usageEntropy).toBeGreaterThan(0);
      expect(h.usageEntropy).toBeLessThanOrEqual(Math.log(h.size) + 1e-12);
    }
    // dk = dv = 4: N·(dk + dv + 1) + C·(dk + dv) per head, independent of T once T ≥ N, C.
    expect(layer.stateSize(1_000)).toBe(2 * (10 * 9 + 8 * 8));
    expect(layer.stateSize(1_000_000)).toBe(layer.stateSize(1_000));
    x.dispose();
  });

  it('OVQ headInputs: the core reference on them rebuilds the layer state, β included', async () => {
    const layer = new OvqAttention({ heads: 2, keyDim: 4, chunkSize: 4, capacity: 5, seed: 11 });
    const x = randomTensor(createRng(9), [2, 37, D]);
    (layer.apply(tf.slice(x, [0, 0, 0], [2, 4, D])) as tf.Tensor).dispose();
    // A β per head that is not the initial one, so a config that ignored the weight would fail.
    layer.trainableWeights
      .find((w) => w.name.endsWith('log_beta'))!
      .write(tf.tensor1d([Math.log(3), Math.log(11)]));
    const state = layer.createState(2);
    layer.step(x, state).dispose();
    const inputs = await layer.headInputs(x);
    expect(inputs).toHaveLength(4);
    inputs.forEach(({ seq, config }, i) => {
      expect(config.beta).toBeCloseTo(i % 2 === 0 ? 3 : 11, 5);
      expect([seq.seqLen, seq.keyDim, seq.valueDim]).toEqual([37, 4, 4]);
      const replay = ovqAttentionReference(seq, config).state;
      const live = state.perHead[i];
      expect(replay.size).toBe(live.size);
      expect(replay.pendingCount).toBe(1);
      expect(Array.from(replay.counts)).toEqual(Array.from(live.counts));
      assertClose(`head ${i} keys`, replay.centroidKeys, live.centroidKeys, 1e-6);
      assertClose(`head ${i} values`, replay.centroidValues, live.centroidValues, 1e-6);
    });
    // Different sequences of the batch and different heads give different inputs.
    expect(Array.from(inputs[0].seq.k)).not.toEqual(Array.from(inputs[2].seq.k));
    expect(Array.from(inputs[0].seq.k)).not.toEqual(Array.from(inputs[1].seq.k));
    x.dispose();
  });

  it('OVQ headInputs refuses an unbuilt layer and a wrong width', async () => {
    const layer = new OvqAttention({ heads: 1, keyDim: 4, chunkSize: 4, capacity: 5, seed: 1 });
    const x = randomTensor(createRng(2), [1, 8, D]);
    await expect(layer.headInputs(x)).rejects.toThrow(/headInputs.*not built/);
    (layer.apply(x) as tf.Tensor).dispose();
    const wrong = tf.zeros([1, 8, D + 1]);
    await expect(layer.headInputs(wrong)).rejects.toThrow(/input.*has shape \[1, 8, 13\]/);
    tf.dispose([x, wrong]);
  });

  it('OVQ test-time capacity: a lowered capacity stops spawning', () => {
    const layer = new OvqAttention({ heads: 1, keyDim: 4, chunkSize: 4, capacity: 16, seed: 10 });
    const x = randomTensor(createRng(8), [1, 64, D]);
    (layer.apply(tf.slice(x, [0, 0, 0], [1, 4, D])) as tf.Tensor).dispose();
    const state = layer.createState(1);
    layer.step(tf.slice(x, [0, 0, 0], [1, 16, D]), state).dispose();
    const before = layer.dictionaryHealth(state)[0].size;
    layer.setStateCapacity(state, 2);
    layer.step(tf.slice(x, [0, 16, 0], [1, 48, D]), state).dispose();
    const after = layer.dictionaryHealth(state)[0];
    expect(after.size).toBe(before);
    expect(after.capacity).toBe(2);
    expect(after.tokensAbsorbed).toBe(64);
    x.dispose();
  });

  it.each([
    ['GatedDeltaNet', (outputNorm: boolean) => new GatedDeltaNet({ ...small, outputNorm })],
    [
      'OvqAttention',
      (outputNorm: boolean) =>
        new OvqAttention({ ...small, chunkSize: 4, capacity: 3, outputNorm }),
    ],
    [
      'KvmAttention',
      (outputNorm: boolean) =>
        new KvmAttention({
          ...small,
          window: 4,
          budget: { kind: 'saturating', rows: 3 },
          outputNorm,
        }),
    ],
  ] as const)(
    '%s outputNorm: the output no longer depends on the scale of the values (it does without)',
    (_, make) => {
      // Every read is linear in v (a delta-rule state, value means), so W_v·10 scales each head's
      // output by 10; RMSNorm undoes it (compared from W_v·10 to W_v·100, so that the norm's ε 1e-6
      // is negligible).
      const x = randomTensor(createRng(12), [B, T, D]);
      for (const outputNorm of [true, false]) {
        const layer = make(outputNorm);
        (layer.apply(x) as tf.Tensor).dispose();
        const wv = layer.weights.find((w) => w.originalName.endsWith('/wv'))!;
        wv.write(tf.mul(wv.read(), 10));
        const y = layer.apply(x) as tf.Tensor;
        wv.write(tf.mul(wv.read(), 10));
        const y10 = layer.apply(x) as tf.Tensor;
        const change = tf.max(tf.abs(tf.sub(y10, y))).dataSync()[0];
        const size = tf.max(tf.abs(y)).dataSync()[0];
        if (outputNorm) expect(change / size).toBeLessThan(1e-3);
        else expect(change / size).toBeGreaterThan(1);
        expect(layer.weights.some((w) => w.originalName.endsWith('/o_gain'))).toBe(outputNorm);
        tf.dispose([y, y10]);
        layer.dispose();
      }
      x.dispose();
    },
  );

  it('stateSize follows ALGORITHM.md §6 for the baselines', () => {
    const full = new SoftmaxAttention({ heads: 2, keyDim: 4 });
    const swa = new SoftmaxAttention({ heads: 2, keyDim: 4, window: 16 });
    const lin = new LinearAttention({ heads: 2, keyDim: 4 });
    const gdn = new GatedDeltaNet({ heads: 2, keyDim: 4 });
    expect(full.stateSize(100)).toBe(2 * 100 * 8);
    expect(swa.stateSize(100)).toBe(2 * 16 * 8);
    expect(lin.stateSize(100)).toBe(2 * (16 + 4));
    expect(gdn.stateSize(100)).toBe(2 * 16);
  });

  it('rejects bad arguments with the argument named', () => {
    expect(() => new OvqAttention({ heads: 0, keyDim: 4 })).toThrow(
      /OvqAttention: heads: got 0; expected a positive integer/,
    );
    expect(() => new OvqAttention({ heads: 1, keyDim: 4, capacity: -1 })).toThrow(
      /config.capacity/,
    );
    expect(() => new SoftmaxAttention({ heads: 1, keyDim: 3, ropeBase: 10000 })).toThrow(
      /even keyDim/,
    );
    expect(() => new GatedDeltaNet({ heads: 1, keyDim: 4, outputNorm: 1 as never })).toThrow(
      /GatedDeltaNet: outputNorm: got 1; expected true or false/,
    );
    expect(() => new OvqAttention({ heads: 1, keyDim: 4, outputGate: 'yes' as never })).toThrow(
      /OvqAttention: outputGate: got yes; expected true or false/,
    );
    expect(
      () => new VqAttention({ heads: 1, keyDim: 4, codebookSize: 2, cacheKeyGradient: 1 as never }),
    ).toThrow(/VqAttention: cacheKeyGradient: got 1; expected true or false/);
    expect(() => new GatedDeltaNet({ heads: 1, keyDim: 4, writeBiasInit: Number.NaN })).toThrow(
      /GatedDeltaNet: writeBiasInit: got NaN; expected a finite number/,
    );
    const a = new LinearAttention({ heads: 1, keyDim: 4 });
    const b = new OvqAttention({ heads: 1, keyDim: 4 });
    const x = tf.zeros([1, 3, D]);
    (a.apply(x) as tf.Tensor).dispose();
    (b.apply(x) as tf.Tensor).dispose();
    expect(() => a.step(x, b.createState(1) as never)).toThrow(
      /LinearAttention.step: state: is not a state of this layer/,
    );
    expect(() => a.step(x, a.createState(2))).toThrow(
      /has batch 1; the state was created for batch 2/,
    );
    expect(() => a.apply(tf.zeros([1, 3, D + 1]))).toThrow();
    x.dispose();
  });
});
