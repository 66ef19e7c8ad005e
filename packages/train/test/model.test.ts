import '@tensorflow/tfjs';
import { assertClose } from '@ovq/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createTfjsMixer,
  Decoder,
  MIXER_KINDS,
  type MixerOptions,
  mixerSchedule,
  sampleBytes,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('decoder with every @ovq/tfjs mixer', () => {
  for (const kind of MIXER_KINDS) {
    it(`swa,${kind}: streaming step() over a sequence equals forward(); stepAsync() equals step() exactly and leaks nothing`, async () => {
      const model = new Decoder(
        {
          vocabSize: 20,
          dModel: 8,
          heads: 2,
          layers: 2,
          mixers: `swa,${kind}`,
          mixerOptions: { window: 4, ovqCapacity: 4, ovqChunkSize: 4 },
          seed: 3,
        },
        createTfjsMixer,
      );
      model.build();
      const tokens = Int32Array.from({ length: 2 * 13 }, (_, i) => (i * 7) % 20);
      const full = tf.tidy(() => model.forward(tf.tensor2d(tokens, [2, 13], 'int32')).dataSync());
      // Pieces of 5, 1, 7 tokens: any split must match the full call.
      const stream = async (
        stepThrough: (piece: tf.Tensor, states: unknown[]) => Promise<tf.Tensor>,
      ) => {
        const states = model.createStreamState(2);
        const streamed = new Float32Array(2 * 13 * 20);
        let at = 0;
        for (const n of [5, 1, 7]) {
          const piece = tf.tensor2d(
            Int32Array.from(
              { length: 2 * n },
              (_, i) => tokens[Math.floor(i / n) * 13 + at + (i % n)],
            ),
            [2, n],
            'int32',
          );
          const logits = await stepThrough(piece, states);
          const out = (await logits.data()) as Float32Array;
          tf.dispose([piece, logits]);
          for (let b = 0; b < 2; b++)
            streamed.set(out.subarray(b * n * 20, (b + 1) * n * 20), (b * 13 + at) * 20);
          at += n;
        }
        return streamed;
      };
      const streamed = await stream(async (piece, states) => model.step(piece, states));
      assertClose(`${kind} logits`, full, streamed, 1e-4);
      const before = tf.memory().numTensors;
      const streamedAsync = await stream((piece, states) => model.stepAsync(piece, states));
      expect(tf.memory().numTensors).toBe(before);
      expect(streamedAsync).toEqual(streamed);
      expect(model.stateSize(64).every((s) => s > 0)).toBe(true);
      model.dispose();
    });
  }

  /** A one-layer d 8 model of `mixers` with these options, built. */
  const oneLayer = (mixers: string, mixerOptions: MixerOptions) => {
    const model = new Decoder(
      { vocabSize: 8, dModel: 8, heads: 2, layers: 1, mixers, mixerOptions, seed: 1 },
      createTfjsMixer,
    );
    model.build();
    return model;
  };
  const weight = (model: Decoder, suffix: string) =>
    [...model.variables].find(([name]) => name.endsWith(suffix))?.[1];

  it('decayBiasInit reaches the decay gate of the decay and gdn layers (default −3)', async () => {
    for (const kind of ['decay', 'gdn']) {
      for (const [init, want] of [
        [undefined, -3],
        [-7, -7],
      ] as const) {
        const model = oneLayer(kind, init === undefined ? {} : { decayBiasInit: init });
        const ba = weight(model, '.ba');
        expect(ba, `${kind} has a decay bias`).toBeDefined();
        expect(Array.from(await ba!.data())).toEqual([want, want]);
        model.dispose();
      }
    }
  });

  it('gdnWriteBiasInit reaches the gdn layer’s writing-strength bias (default 0)', async () => {
    for (const [init, want] of [
      [undefined, 0],
      [-3, -3],
    ] as const) {
      const model = oneLayer('gdn', init === undefined ? {} : { gdnWriteBiasInit: init });
      const bb = weight(model, '.bb');
      expect(bb, 'gdn has a writing-strength bias').toBeDefined();
      expect(Array.from(await bb!.data())).toEqual([want, want]);
      model.dispose();
    }
  });

  it.each([
    ['gdn', 'gdnOutputNorm'],
    ['ovq', 'ovqOutputNorm'],
    ['kvm', 'kvmOutputNorm'],
  ] as const)('%s: %s gives the layer its output RMSNorm gain (off by default)', (kind, key) => {
    for (const on of [undefined, true]) {
      const model = oneLayer(kind, on === undefined ? {} : { [key]: on });
      expect(weight(model, '.o_gain') !== undefined).toBe(on === true);
      model.dispose();
    }
  });

  it('vqDeadCodeThreshold and vqBeta reach the Transformer-VQ layer (the trainer restarts dead codes at 2 keys per step unless told 0)', () => {
    for (const [threshold, want] of [
      [undefined, 2],
      [0, 0],
      [5, 5],
    ] as const) {
      const beta = threshold === 5 ? 0.5 : undefined;
      const model = oneLayer('vq', { vqCodes: 4, vqDeadCodeThreshold: threshold, vqBeta: beta });
      const layer = model.mixers[0] as unknown as {
        deadCodeThreshold: number;
        config: { beta?: number };
      };
      expect(layer.deadCodeThreshold).toBe(want);
      // vqBeta: the layer's logit scale (its default, 1/√headDim, when unset).
      expect(layer.config.beta).toBe(beta);
      model.dispose();
    }
    for (const on of [undefined, false, true]) {
      const model = oneLayer('vq', { vqCodes: 4, vqCacheKeyGradient: on });
      const layer = model.mixers[0] as unknown as { config: { cacheKeyGradient?: boolean } };
      expect(layer.config.cacheKeyGradient === true).toBe(on === true);
      model.dispose();
    }
  });

  it('the OVQ layer state stays bounded while softmax grows with T', () => {
    const make = (mixers: string) =>
      new Decoder(
        {
          vocabSize: 8,
          dModel: 8,
          heads: 2,
          layers: 1,
          mixers,
          mixerOptions: { ovqCapacity: 16 },
          seed: 1,
        },
        createTfjsMixer,
      );
    const ovq = make('ovq');
    const softmax = make('softmax');
    expect(ovq.stateSize(1 << 16)[0]).toBe(ovq.stateSize(1 << 12)[0]);
    expect(softmax.stateSize(1 << 16)[0]).toBe(16 * softmax.stateSize(1 << 12)[0]);
  });

  it('samples bytes with a constant-memory streaming state', async () => {
    const model = new Decoder(
      { vocabSize: 256, dModel: 8, heads: 2, layers: 2, mixers: 'swa,ovq', seed: 2 },
      createTfjsMixer,
    );
    model.build();
    const before = tf.memory().numTensors;
    const text = await sampleBytes(model, {
      prompt: new TextEncoder().encode('The '),
      tokens: 12,
      temperature: 0.8,
      seed: 1,
    });
    expect(text.length).toBe(16);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('rejects an unknown mixer before building anything', () => {
    expect(() => mixerSchedule('swa,mamba', 2)).toThrow(
      /unknown mixer "mamba" in "swa,mamba"; choose from swa, softmax, ovq/,
    );
  });
});
