// Two in-context recall tasks in the paper's spirit (ALGORITHM.md §7).
import { itemSeed, Random } from './random.js';
import { IGNORE, type Task, type TokenBatch } from './types.js';

/**
 * Basic recall: `numPairs` key-value pairs (keys from the lower half of the vocabulary, values from
 * the upper half) followed by random filler; the last `queries` positions each hold one of the
 * keys and are scored on its value. Only identity matters: which value was paired with this key.
 */
export function basicRecallTask(options: {
  vocabSize: number;
  numPairs: number;
  queries?: number;
}): Task<TokenBatch> {
  const { vocabSize: V, numPairs: P } = options;
  const Q = options.queries ?? Math.min(P, 8);
  if (P < 1 || P >= V / 2)
    throw new RangeError(`basic-recall: numPairs is ${P}; expected 1 ≤ numPairs < vocabSize/2`);
  if (Q < 1 || Q > P)
    throw new RangeError(`basic-recall: queries is ${Q}; expected 1 ≤ queries ≤ numPairs = ${P}`);
  return {
    name: 'basic-recall',
    description: `basic recall: ${P} pairs, then ${Q} keys queried at the end after filler (vocab ${V})`,
    metric: 'accuracy',
    sample(batch, seqLen, seed) {
      if (seqLen < 2 * P + Q)
        throw new RangeError(
          `basic-recall: seqLen is ${seqLen}; expected ≥ 2·numPairs + queries = ${2 * P + Q}`,
        );
      const inputs = new Int32Array(batch * seqLen);
      const targets = new Int32Array(batch * seqLen).fill(IGNORE);
      const half = Math.floor(V / 2);
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        const o = b * seqLen;
        const keys = rng.distinct(1, half, P);
        const values = rng.distinct(half, V, P);
        for (let i = 0; i < P; i++) {
          inputs[o + 2 * i] = keys[i];
          inputs[o + 2 * i + 1] = values[i];
        }
        // Filler comes from the value half so it never repeats a key.
        for (let t = 2 * P; t < seqLen - Q; t++) inputs[o + t] = rng.int(half, V);
        const asked = rng.distinct(0, P, Q);
        asked.forEach((i, j) => {
          const at = o + seqLen - Q + j;
          inputs[at] = keys[i];
          targets[at] = values[i];
        });
      }
      return { kind: 'tokens', batch, seqLen, vocabSize: V, inputs, targets };
    },
  };
}

/**
 * Positional recall: a run of `runLength` distinct tokens c_1 … c_m (default m = ⌊seqLen/2⌋),
 * then queries c_i whose target is c_{i+1}, the token that stood right after it. The answer
 * depends on where c_i was, not on any fixed pairing, so the model must bind each token to its
 * position's neighbour. A fixed `runLength` keeps the task the same at longer evaluation lengths:
 * only the distance between the run and its queries grows.
 */
export function positionalRecallTask(options: {
  vocabSize: number;
  runLength?: number;
}): Task<TokenBatch> {
  const V = options.vocabSize;
  const fixedRun = options.runLength;
  return {
    name: 'positional-recall',
    description: `positional recall: after a run of distinct tokens, each query asks for the token that followed it (vocab ${V})`,
    metric: 'accuracy',
    sample(batch, seqLen, seed) {
      const m = fixedRun ?? Math.floor(seqLen / 2);
      if (m < 2 || m > V || m >= seqLen) {
        throw new RangeError(
          `positional-recall: run of ${m} tokens at seqLen ${seqLen}; expected 2 ≤ run ≤ vocabSize = ${V} and run < seqLen`,
        );
      }
      const inputs = new Int32Array(batch * seqLen);
      const targets = new Int32Array(batch * seqLen).fill(IGNORE);
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        const o = b * seqLen;
        const run = rng.distinct(0, V, m);
        inputs.set(run, o);
        for (let t = m; t < seqLen; t++) {
          const i = rng.int(0, m - 1);
          inputs[o + t] = run[i];
          targets[o + t] = run[i + 1];
        }
      }
      return { kind: 'tokens', batch, seqLen, vocabSize: V, inputs, targets };
    },
  };
}
