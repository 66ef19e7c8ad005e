// Text generation from a byte-level model with streaming, constant-memory mixer states: the
// prompt is fed once, then each new byte is one `stepAsync` through every layer's state (reads are
// awaited, so any backend works).
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
  // The prompt's logits at its last position, then one step per sampled byte.
  let logits = await streamLastLogits(model, Int32Array.from(options.prompt), states);
  for (let i = 0; i < options.tokens; i++) {
    const scores = (await logits.data()) as Float32Array;
    logits.dispose();
    const next = pick(scores, options.temperature, rng);
    out.push(next);
    logits = await streamLastLogits(model, Int32Array.of(next), states);
  }
  logits.dispose();
  return Uint8Array.from(out);
}

/** Streams `tokens` (one sequence) through `states`; the logits [vocab] after the last one. */
async function streamLastLogits(
  model: Decoder,
  tokens: Int32Array,
  states: unknown[],
): Promise<tf.Tensor> {
  const input = tf.tensor2d(tokens, [1, tokens.length], 'int32');
  const all = await model.stepAsync(input, states);
  input.dispose();
  const last = tf.tidy(() =>
    tf.reshape(tf.slice(all, [0, tokens.length - 1, 0], [1, 1, -1]), [-1]),
  );
  all.dispose();
  return last;
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
