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
      checkMqarLength('mqar', seqLen, P);
      const inputs = new Int32Array(batch * seqLen);
      const targets = new Int32Array(batch * seqLen).fill(IGNORE);
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        const row = inputs.subarray(b * seqLen, (b + 1) * seqLen);
        const target = targets.subarray(b * seqLen, (b + 1) * seqLen);
        writeMqarRow(rng, row, target, V, P, powerA, randomFill);
      }
      return { kind: 'tokens', batch, seqLen, vocabSize: V, inputs, targets };
    },
  };
}

function checkMqarLength(name: string, seqLen: number, P: number): void {
  if (!Number.isInteger(seqLen) || seqLen % 2 !== 0 || seqLen < 4 * P) {
    throw new RangeError(
      `${name}: seqLen is ${seqLen}; expected an even number ≥ 4·numPairs = ${4 * P}`,
    );
  }
}

/** One MQAR sequence filling all of `row` (its length is the sequence length). */
function writeMqarRow(
  rng: Random,
  row: Int32Array,
  target: Int32Array,
  V: number,
  P: number,
  powerA: number,
  randomFill: boolean,
): void {
  const seqLen = row.length;
  const context = 2 * P;
  const space = (seqLen - context) / 2;
  const gapWeights = new Float64Array(space);
  for (let g = 0; g < space; g++) gapWeights[g] = powerA * (g + 1) ** (powerA - 1);
  const keyHalf = Math.floor(V / 2);
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

/** One (length, pairs) slice of a zoology-style MQAR training mixture. */
export type MqarSlice = { seqLen: number; numPairs: number; weight?: number };

export type MqarMixtureOptions = {
  vocabSize: number;
  slices: MqarSlice[];
  powerA?: number;
};

/**
 * Zoology's training recipe: each sequence of a batch is drawn from one of several (length,
 * pairs) slices (weighted), written at the start of the row; the rest of the row is padding
 * (token 0, not scored), which a causal model never sees before the scored positions. The
 * vocabulary must exceed every length asked for, as zoology requires, so keys rarely recur in
 * the random filler.
 */
export function mqarMixtureTask(options: MqarMixtureOptions): Task<TokenBatch> {
  const { vocabSize: V, slices } = options;
  const powerA = options.powerA ?? 0.01;
  if (!Number.isInteger(V) || V < 4)
    throw new RangeError(`mqar-mixture: vocabSize is ${V}; expected an integer ≥ 4`);
  if (!Array.isArray(slices) || slices.length === 0)
    throw new RangeError('mqar-mixture: slices is empty; expected at least one {seqLen, numPairs}');
  slices.forEach((s, i) => {
    if (!Number.isInteger(s.numPairs) || s.numPairs < 1 || s.numPairs >= V / 2)
      throw new RangeError(
        `mqar-mixture: slices[${i}].numPairs is ${s.numPairs}; expected 1 ≤ numPairs < vocabSize/2`,
      );
    checkMqarLength(`mqar-mixture: slices[${i}]`, s.seqLen, s.numPairs);
    if (s.seqLen >= V)
      throw new RangeError(
        `mqar-mixture: slices[${i}].seqLen is ${s.seqLen}; expected < vocabSize = ${V} (zoology: vocabulary larger than the sequence)`,
      );
    if (s.weight !== undefined && !(s.weight > 0 && Number.isFinite(s.weight)))
      throw new RangeError(`mqar-mixture: slices[${i}].weight is ${s.weight}; expected > 0`);
  });
  const weights = Float64Array.from(slices, (s) => s.weight ?? 1);
  const total = weights.reduce((a, b) => a + b, 0);
  const longest = Math.max(...slices.map((s) => s.seqLen));
  const names = slices.map((s) => `${s.seqLen}/${s.numPairs}`).join(', ');
  return {
    name: 'mqar-mixture',
    description: `MQAR mixture (zoology): slices length/pairs ${names} (vocab ${V}, power law a=${powerA})`,
    metric: 'accuracy',
    sample(batch, seqLen, seed) {
      if (!Number.isInteger(seqLen) || seqLen < longest)
        throw new RangeError(
          `mqar-mixture: seqLen is ${seqLen}; expected an integer ≥ the longest slice (${longest})`,
        );
      const inputs = new Int32Array(batch * seqLen);
      const targets = new Int32Array(batch * seqLen).fill(IGNORE);
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        let u = rng.next() * total;
        let pick = 0;
        while (pick < slices.length - 1 && u >= weights[pick]) u -= weights[pick++];
        const slice = slices[pick];
        const row = inputs.subarray(b * seqLen, b * seqLen + slice.seqLen);
        const target = targets.subarray(b * seqLen, b * seqLen + slice.seqLen);
        writeMqarRow(rng, row, target, V, slice.numPairs, powerA, true);
      }
      return { kind: 'tokens', batch, seqLen, vocabSize: V, inputs, targets };
    },
  };
}
