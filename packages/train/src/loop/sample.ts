// Text generation from a byte-level model with streaming, constant-memory mixer states: the
// prompt is fed once, then each new byte is one `step` through every layer's state.
import * as tf from '@tensorflow/tfjs-core';
import type { Decoder } from '../model/decoder.js';
import { Random } from '../tasks/random.js';

export async function sampleBytes(
  model: Decoder,
  options: { prompt: Uint8Array; tokens: number; temperature: number; seed: number },
): Promise<Uint8Array> {
  if (options.prompt.length === 0)
    throw new Error('prompt: empty; give at least one byte to continue');
  if (!Number.isInteger(options.tokens) || options.tokens < 0)
    throw new Error(`tokens: got ${options.tokens}; expected a non-negative integer`);
  const rng = new Random(options.seed);
  const states = model.createStreamState(1);
  const out = Array.from(options.prompt);
  let logits = tf.tidy(() => {
    const all = model.step(
      tf.tensor2d(Int32Array.from(options.prompt), [1, options.prompt.length], 'int32'),
      states,
    );
    return tf.squeeze(tf.slice(all, [0, options.prompt.length - 1, 0], [1, 1, -1]));
  });
  for (let i = 0; i < options.tokens; i++) {
    const scores = (await logits.data()) as Float32Array;
    logits.dispose();
    const next = pick(scores, options.temperature, rng);
    out.push(next);
    logits = tf.tidy(() => tf.squeeze(model.step(tf.tensor2d([next], [1, 1], 'int32'), states)));
  }
  logits.dispose();
  return Uint8Array.from(out);
}

function pick(scores: Float32Array, temperature: number, rng: Random): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  if (temperature <= 0) return best;
  let total = 0;
  const p = Float64Array.from(scores, (s) => {
    const e = Math.exp((s - scores[best]) / temperature);
    total += e;
    return e;
  });
  let u = rng.next() * total;
  for (let i = 0; i < p.length; i++) if ((u -= p[i]) <= 0) return i;
  return p.length - 1;
}
