// Needle in a haystack, single needle (RULER's NIAH-S1 in token form): a marked key followed by a
// k-token value sits at some depth of filler; at the end the key is asked for again and the k
// value tokens are scored. Only a mixer that can find one old span among many tokens answers it.
import { itemSeed, Random } from './random.js';
import type { TextDocument } from './text.js';
import { IGNORE, type Task, type TokenBatch } from './types.js';

export type NiahOptions = {
  /** Value tokens per needle (k). Default 4. */
  needleLength?: number;
  /**
   * Where the needle starts, as a fraction of the filler in [0, 1] (0 = first token, 1 = just
   * before the question). Omit for a uniform random depth per sequence (training).
   */
  depth?: number;
  /**
   * Filler: `'synthetic'` (uniform tokens from a range no needle token uses) or documents whose
   * bytes are the filler (vocabulary: bytes 0–255, then the special, key and value tokens).
   * Default 'synthetic'.
   */
  filler?: 'synthetic' | TextDocument[];
  /** Key tokens to draw from. Default 256. */
  keys?: number;
  /** Value tokens to draw from. Default 256. */
  values?: number;
  /** Filler tokens for synthetic filler. Default 512. */
  fillerTokens?: number;
  /**
   * Needles per sequence (RULER's NIAH-MK): each under its own key, one of them asked for (the one
   * at `depth`); the others sit at uniform random places in the filler. A model that copies
   * whatever follows a NEEDLE marker, without matching the key, scores about 1/needles. Default 1.
   */
  needles?: number;
};

/** Token layout of a NIAH vocabulary: [filler | NEEDLE | QUERY | keys | values]. */
export type NiahVocabulary = {
  vocabSize: number;
  needle: number;
  query: number;
  keyBase: number;
  valueBase: number;
  fillerSize: number;
};

export function niahVocabulary(options: NiahOptions = {}): NiahVocabulary {
  const fillerSize =
    options.filler === undefined || options.filler === 'synthetic'
      ? (options.fillerTokens ?? 512)
      : 256;
  const keys = options.keys ?? 256;
  const values = options.values ?? 256;
  for (const [name, n] of [
    ['fillerTokens', fillerSize],
    ['keys', keys],
    ['values', values],
  ] as const) {
    if (!Number.isInteger(n) || n < 2)
      throw new RangeError(`niah: ${name} is ${n}; expected an integer ≥ 2`);
  }
  const needle = fillerSize;
  const query = fillerSize + 1;
  const keyBase = fillerSize + 2;
  const valueBase = keyBase + keys;
  return { vocabSize: valueBase + values, needle, query, keyBase, valueBase, fillerSize };
}

export function niahTask(options: NiahOptions = {}): Task<TokenBatch> {
  const k = options.needleLength ?? 4;
  if (!Number.isInteger(k) || k < 1 || k > 64)
    throw new RangeError(`niah: needleLength is ${k}; expected an integer in [1, 64]`);
  const depth = options.depth;
  if (depth !== undefined && !(depth >= 0 && depth <= 1))
    throw new RangeError(`niah: depth is ${depth}; expected a number in [0, 1] or undefined`);
  const vocab = niahVocabulary(options);
  const keyCount = vocab.valueBase - vocab.keyBase;
  const needles = options.needles ?? 1;
  if (!Number.isInteger(needles) || needles < 1 || needles > keyCount)
    throw new RangeError(
      `niah: needles is ${needles}; expected an integer in [1, ${keyCount}] (one distinct key each)`,
    );
  const valueCount = vocab.vocabSize - vocab.valueBase;
  const documents = Array.isArray(options.filler) ? options.filler : undefined;
  let stream: Uint8Array | undefined;
  if (documents) {
    if (documents.length === 0) throw new RangeError('niah: filler has no documents');
    const total = documents.reduce((n, d) => n + d.bytes.length + 1, 0);
    stream = new Uint8Array(total);
    let at = 0;
    for (const d of documents) {
      stream.set(d.bytes, at);
      stream[at + d.bytes.length] = 10;
      at += d.bytes.length + 1;
    }
  }
  // A needle's key (distinct from `taken`) and value, at filler offset `offset`.
  const drawNeedle = (rng: Random, offset: number, taken: number[]) => {
    let key = vocab.keyBase + rng.int(0, keyCount);
    while (taken.includes(key)) key = vocab.keyBase + rng.int(0, keyCount);
    const value: number[] = [];
    for (let i = 0; i < k; i++) value.push(vocab.valueBase + rng.int(0, valueCount));
    return { offset, key, value };
  };
  // needle span: NEEDLE key v1..vk ; question: QUERY key v1..vk (the last value is not an input
  // that is scored, but keeps the question the same shape as the needle).
  const span = k + 2;
  const where = depth === undefined ? 'a random depth' : `depth ${depth}`;
  const fillerName = documents ? 'corpus' : 'synthetic';
  return {
    name: 'niah',
    description:
      needles === 1
        ? `NIAH-S1: a ${k}-token value under a marked key at ${where} of ${fillerName} filler, asked for at the end (vocab ${vocab.vocabSize})`
        : `NIAH-MK: ${needles} ${k}-token values under distinct marked keys in ${fillerName} filler, the one at ${where} asked for at the end (vocab ${vocab.vocabSize})`,
    metric: 'accuracy',
    sample(batch, seqLen, seed) {
      const shortest = (needles + 1) * span + 1;
      if (!Number.isInteger(seqLen) || seqLen < shortest)
        throw new RangeError(`niah: seqLen is ${seqLen}; expected an integer ≥ ${shortest}`);
      const inputs = new Int32Array(batch * seqLen);
      const targets = new Int32Array(batch * seqLen).fill(IGNORE);
      // Filler tokens around the needles: a needle at offset o (in [0, fillerLength]) has o
      // filler tokens before it.
      const fillerLength = seqLen - (needles + 1) * span;
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        const row = inputs.subarray(b * seqLen, (b + 1) * seqLen);
        const target = targets.subarray(b * seqLen, (b + 1) * seqLen);
        if (stream) {
          let start = rng.int(0, stream.length);
          if (start + seqLen > stream.length) start = Math.max(0, stream.length - seqLen);
          for (let t = 0; t < seqLen; t++) row[t] = stream[(start + t) % stream.length];
        } else {
          for (let t = 0; t < seqLen; t++) row[t] = rng.int(0, vocab.fillerSize);
        }
        // The asked needle first (with one needle, the same draws as ever), then the others.
        const asked = drawNeedle(rng, Math.round((depth ?? rng.next()) * fillerLength), []);
        const placed = [asked];
        for (let n = 1; n < needles; n++)
          placed.push(
            drawNeedle(
              rng,
              rng.int(0, fillerLength + 1),
              placed.map((p) => p.key),
            ),
          );
        // Spans in offset order; on a tie the asked needle goes first below depth 0.5 and last
        // from it, so depths 0 and 1 keep it at the very start or just before the question.
        const late = (depth ?? 0.5) >= 0.5;
        placed.sort(
          (a, b) =>
            a.offset - b.offset ||
            (a === asked ? (late ? 1 : -1) : b === asked ? (late ? -1 : 1) : 0),
        );
        placed.forEach(({ offset, key, value }, j) => {
          const at = offset + j * span;
          row[at] = vocab.needle;
          row[at + 1] = key;
          for (let i = 0; i < k; i++) row[at + 2 + i] = value[i];
        });
        const { key, value } = asked;
        const q = seqLen - span;
        row[q] = vocab.query;
        row[q + 1] = key;
        for (let i = 0; i < k; i++) row[q + 2 + i] = value[i];
        // Next-token targets: after the key comes v1, after v_i comes v_{i+1}.
        for (let i = 0; i < k; i++) target[q + 1 + i] = value[i];
      }
      return { kind: 'tokens', batch, seqLen, vocabSize: vocab.vocabSize, inputs, targets };
    },
  };
}
