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

type Factory = { name: string; make: () => MixerLayer<unknown> };

const factories: Factory[] = [
  {
    name: 'OvqAttention',
    make: () =>
      new OvqAttention({
        heads: 2,
        keyDim: 4,
        valueDim: 3,
        chunkSize: 4,
        capacity: 6,
        outputGate: true,
        seed: 1,
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
    const pieces: tf.Tensor[] = [];
    let at = 0;
    for (const n of [1, 5, 1, 14]) {
      const xs = tf.slice(x, [0, at, 0], [B, n, D]);
      pieces.push(layer.step(xs, state));
      xs.dispose();
      at += n;
    }
    const streamed = tf.concat(pieces, 1);
    assertClose('step vs call', full.dataSync(), streamed.dataSync(), 1e-5);
    expect(state.position).toBe(T);
    expect(layer.stateSize(T)).toBeGreaterThan(0);
    tf.dispose([x, full, streamed, ...pieces]);
  });
});
