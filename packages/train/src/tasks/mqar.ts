// Multi-query associative recall as zoology defines it (Arora et al. 2023): key-value pairs up
// front (keys from the lower half of the vocabulary, values from the upper half), then each key
// queried once at a power-law-distributed gap; the target at a query is its value.
import { itemSeed, Random } from './random.js';
import { IGNORE, type Task, type TokenBatch } from './types.js';

export type MqarOptions = {
  vocabSize: number;
  numPairs: number;
  /** Power-law exponent a of the gap distribution p(g) ∝ g^(a−1); 1 is uniform. Default 0.01. */
  powerA?: number;
  /** Replace the unused query slots with random tokens (zoology's default). Default true. */
  randomNonQueries?: boolean;
};

export function mqarTask(options: MqarOptions): Task<TokenBatch> {
  const { vocabSize: V, numPairs: P } = options;
  const powerA = options.powerA ?? 0.01;
  const randomFill = options.randomNonQueries ?? true;
  if (!Number.isInteger(V) || V < 4)
    throw new RangeError(`mqar: vocabSize is ${V}; expected an integer ≥ 4`);
  if (!Number.isInteger(P) || P < 1 || P >= V / 2) {
    throw new RangeError(`mqar: numPairs is ${P}; expected 1 ≤ numPairs < vocabSize/2 = ${V / 2}`);
  }
  return {
    name: 'mqar',
    description: `MQAR: ${P} key-value pairs, each key queried once later (vocab ${V}, power law a=${powerA})`,
    metric: 'accuracy',
    sample(batch, seqLen, seed) {
      if (!Number.isInteger(seqLen) || seqLen % 2 !== 0 || seqLen < 4 * P) {
        throw new RangeError(
          `mqar: seqLen is ${seqLen}; expected an even number ≥ 4·numPairs = ${4 * P}`,
        );
      }
      const inputs = new Int32Array(batch * seqLen);
      const targets = new Int32Array(batch * seqLen).fill(IGNORE);
      const context = 2 * P;
      const space = (seqLen - context) / 2;
      const gapWeights = new Float64Array(space);
      for (let g = 0; g < space; g++) gapWeights[g] = powerA * (g + 1) ** (powerA - 1);
      const keyHalf = Math.floor(V / 2);
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        const row = inputs.subarray(b * seqLen, (b + 1) * seqLen);
        const target = targets.subarray(b * seqLen, (b + 1) * seqLen);
        const keys = rng.distinct(1, keyHalf, P);
        const values = rng.distinct(keyHalf, V, P);
        const filled = new Uint8Array(seqLen);
        for (let i = 0; i < P; i++) {
          row[2 * i] = keys[i];
          row[2 * i + 1] = values[i];
          filled[2 * i] = filled[2 * i + 1] = 1;
        }
        const gaps = rng.weightedDistinct(gapWeights, P);
        gaps.forEach((g, i) => {
          const at = context + 2 * g;
          row[at] = keys[i];
          target[at] = values[i];
          filled[at] = 1;
        });
        for (let t = 0; t < seqLen; t++) if (!filled[t] && randomFill) row[t] = rng.int(0, V);
      }
      return { kind: 'tokens', batch, seqLen, vocabSize: V, inputs, targets };
    },
  };
}
