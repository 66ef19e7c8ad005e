import '@tensorflow/tfjs';
import { ovqAttentionReference, type Seq } from '@ovq/core';
import { assertClose, createRng } from '@ovq/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  absorbDistances,
  copyNovelty,
  createTfjsMixer,
  Decoder,
  evaluate,
  evaluationBatch,
  needleAccuracy,
  needleAnswers,
  niahTask,
  niahVocabulary,
  readWeightsAt,
  summarizeNeedleTraces,
  type TokenBatch,
  traceHead,
  traceNeedles,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function randomSeq(seed: number, seqLen: number, keyDim: number, valueDim: number): Seq {
  const rng = createRng(seed);
  const fill = (n: number) => Float64Array.from({ length: n }, () => rng() * 2 - 1);
  return {
    q: fill(seqLen * keyDim),
    k: fill(seqLen * keyDim),
    v: fill(seqLen * valueDim),
    seqLen,
    keyDim,
    valueDim,
  };
}

/** A built SWA/OVQ decoder small enough for a unit test (OVQ N = 5, chunk 4). */
function tinyOvqDecoder(vocabSize: number, layers: number): Decoder {
  const model = new Decoder(
    {
      vocabSize,
      dModel: 8,
      heads: 2,
      layers,
      mixers: 'swa,ovq',
      mixerOptions: { window: 4, ovqCapacity: 5, ovqChunkSize: 4 },
      seed: 5,
    },
    createTfjsMixer,
  );
  model.build();
  return model;
}

const prefix = (seq: Seq, n: number): Seq => ({
  ...seq,
  q: seq.q.subarray(0, n * seq.keyDim),
  k: seq.k.subarray(0, n * seq.keyDim),
  v: seq.v.subarray(0, n * seq.valueDim),
  seqLen: n,
});

describe('readWeightsAt', () => {
  it.each([
    ['dot', 'saturating'],
    ['gaussian', 'full'],
  ] as const)(
    'the weights it gives read the reference output at every position (%s read, %s growth)',
    (read, growth) => {
      const seq = randomSeq(4, 41, 5, 3);
      const config = { chunkSize: 4, capacity: 6, beta: 3.5, read, growth };
      const { output } = ovqAttentionReference(seq, config);
      // Positions in the middle of a chunk and the last token of one (p + 1 ≡ 0 mod 4).
      for (const p of [0, 2, 3, 17, 19, 40]) {
        const before = ovqAttentionReference(prefix(seq, p), config).state;
        const w = readWeightsAt(before, seq, p);
        expect(w.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 12);
        const values = [
          ...Array.from({ length: before.size }, (_, i) =>
            before.centroidValues.subarray(i * 3, i * 3 + 3),
          ),
          ...Array.from({ length: before.pendingCount }, (_, s) =>
            before.pendingValues.subarray(s * 3, s * 3 + 3),
          ),
          seq.v.subarray(p * 3, p * 3 + 3),
        ];
        const read = new Float64Array(3);
        values.forEach((v, i) => {
          for (let d = 0; d < 3; d++) read[d] += w[i] * v[d];
        });
        assertClose(`read at ${p}`, output.subarray(p * 3, p * 3 + 3), read, 1e-12);
      }
    },
  );
});

describe('traceHead', () => {
  it('with zero queries every token weighs the same, so the needle mass is needle tokens / (p + 1)', () => {
    const seq = randomSeq(7, 64, 4, 2);
    seq.q.fill(0);
    const needle = { at: 21, tokens: 6 };
    const scored = [58, 59, 60, 61];
    const t = traceHead(seq, { chunkSize: 8, capacity: 5, beta: 7 }, needle, scored);
    const expected = scored.reduce((a, p) => a + 6 / (p + 1), 0) / scored.length;
    expect(t.needleMass).toBeCloseTo(expected, 12);
    // The rows holding needle tokens also hold filler: more weight than the needle's share.
    expect(t.readWeight).toBeGreaterThan(t.needleMass);
    expect(t.pending).toBe(0);
    // 56 tokens absorbed at p = 58: saturating growth allows ⌊N·τ/(N + τ)⌋ = ⌊5·56/61⌋ rows.
    expect(t.rows).toBe(4);
    expect(t.rowCount).toBeGreaterThan(1);
    // Every similarity is 0: no margin, no closer slot; the read follows the counts alone.
    expect(t.similarityMargin).toBe(0);
    expect(t.similarityRank).toBe(0);
    expect(t.beta).toBe(7);
    expect(Number.isFinite(t.priorMargin)).toBe(true);
  });

  it('a needle along its own direction seeds its rows and the question reads almost only it', () => {
    // Filler keys along e0, needle keys along e1 (orthogonal), queries along e1, β large.
    const T = 48;
    const seq = randomSeq(9, T, 3, 2);
    const needle = { at: 16, tokens: 4 };
    for (let t = 0; t < T; t++) {
      const inNeedle = t >= needle.at && t < needle.at + needle.tokens;
      seq.k.set(inNeedle ? [0, 1, 0] : [1, 0, 0.01 * (t % 5)], t * 3);
      seq.q.set([0, 1, 0], t * 3);
    }
    const config = { chunkSize: 4, capacity: 12, beta: 40 };
    const t = traceHead(seq, config, needle, [44, 45]);
    // The needle fills one chunk; the first of its tokens is farthest from every row: a new row.
    expect(t.seeded).toBeGreaterThanOrEqual(1);
    expect(t.readWeight).toBeGreaterThan(0.99);
    expect(t.needleMass).toBeGreaterThan(0.99);
    // The query points at the needle (s = 1) and at no filler key (s ≈ 0), which it is
    // orthogonal to; the filler rows outnumber it, so the prior favours them.
    expect(t.similarityMargin).toBeGreaterThan(0.99);
    expect(t.similarityRank).toBe(0);
    expect(t.needleKeyCosine).toBeLessThan(0.01);
    expect(t.priorMargin).toBeLessThan(0);
    // The same sequence asked along the filler's direction: every other slot is closer.
    for (let p = 0; p < T; p++) seq.q.set([1, 0, 0], p * 3);
    const away = traceHead(seq, config, needle, [44, 45]);
    expect(away.similarityMargin).toBeLessThan(-0.99);
    expect(away.similarityRank).toBeGreaterThanOrEqual(2);
    expect(away.readWeight).toBeLessThan(1e-6);
    expect(away.needleKeyCosine).toBeCloseTo(t.needleKeyCosine, 12);
  });

  it('a needle whose key equals a filler key has a key cosine of 1 with that filler row', () => {
    const T = 40;
    const seq = randomSeq(11, T, 3, 2);
    const needle = { at: 12, tokens: 4 };
    // Filler keys alternate between e0 and e2; the needle's keys are e2 as well.
    for (let t = 0; t < T; t++) {
      const inNeedle = t >= needle.at && t < needle.at + needle.tokens;
      seq.k.set(inNeedle || t % 2 === 1 ? [0, 0, 1] : [1, 0, 0], t * 3);
    }
    const t = traceHead(seq, { chunkSize: 4, capacity: 20, beta: 3 }, needle, [38]);
    expect(t.needleKeyCosine).toBeCloseTo(1, 9);
  });

  it('a still-pending needle is read from its pending slots', () => {
    const seq = randomSeq(3, 30, 4, 2);
    seq.q.fill(0);
    // Chunk 16: tokens 16–29 are pending at p = 29 (the needle at 20–25 among them).
    const t = traceHead(seq, { chunkSize: 16, capacity: 4, beta: 2 }, { at: 20, tokens: 6 }, [29]);
    expect(t.pending).toBe(6);
    expect(Number.isNaN(t.rowCount)).toBe(true);
    expect(t.needleMass).toBeCloseTo(6 / 30, 12);
    expect(t.readWeight).toBeCloseTo(t.needleMass, 12);
    // Pending slots and the question count 1, the rows more: the prior is against the needle.
    expect(t.priorMargin).toBeLessThan(0);
  });

  it('counts the haystack keys that copy the needle key, and those in the window after it', () => {
    const T = 40;
    const seq = randomSeq(13, T, 3, 2);
    const needle = { at: 10, tokens: 4 };
    for (let t = 0; t < T; t++) seq.k.set([1, 0, 0.1 * (t % 3)], t * 3);
    // The needle key (token 11) along e1; three tokens right after the needle and one far
    // before it repeat it (cosine 1 up to scale); the question (36 on) does too but is not haystack.
    for (const t of [11, 14, 15, 16, 3, 36, 37]) seq.k.set([0, 2, 0.05], t * 3);
    const twins = { keyAt: 11, questionAt: 36, window: 6 };
    const t = traceHead(seq, { chunkSize: 4, capacity: 8, beta: 2 }, needle, [38], twins);
    expect(t.keyTwins).toBe(4);
    // 14, 15, 16 lie within 6 tokens after the key token 11; 3 does not.
    expect(t.keyTwinsInWindow).toBe(3);
    const withoutTwins = traceHead(seq, { chunkSize: 4, capacity: 8, beta: 2 }, needle, [38]);
    expect(Number.isNaN(withoutTwins.keyTwins)).toBe(true);
    expect(Number.isNaN(withoutTwins.twinMass)).toBe(true);
    expect(withoutTwins.readWeight).toBe(t.readWeight);
    // With zero queries every token weighs the same: the four twins get 4 / (p + 1) of the read,
    // whether absorbed into rows or pending (p = 38: tokens 36–38 pending, no twin among them).
    seq.q.fill(0);
    const flat = traceHead(seq, { chunkSize: 4, capacity: 8, beta: 2 }, needle, [38, 39], twins);
    expect(flat.twinMass).toBeCloseTo((4 / 39 + 4 / 40) / 2, 12);
  });

  it.each([
    ['absorbed into rows', 20, 4],
    ['still pending', 36, 2],
  ])('the twins share of the read is the needle mass of a needle made of them (%s)', (_, at, n) => {
    const T = 40;
    const seq = randomSeq(17, T, 3, 2);
    const needle = { at: 10, tokens: 4 };
    for (let t = 0; t < T; t++) seq.k.set([1, 0.3 * (t % 4), 0], t * 3);
    // The needle key (token 11) and its only twins (tokens at … at + n − 1) along e2.
    for (let t = at; t < at + n; t++) seq.k.set([0, 0, 1], t * 3);
    seq.k.set([0, 0, 1], 11 * 3);
    const config = { chunkSize: 4, capacity: 8, beta: 3 };
    const twins = { keyAt: 11, questionAt: 38, window: 4 };
    const t = traceHead(seq, config, needle, [38], twins);
    expect(t.keyTwins).toBe(n);
    const asNeedle = traceHead(seq, config, { at, tokens: n }, [38]);
    expect(t.twinMass).toBeGreaterThan(0);
    expect(t.twinMass).toBeCloseTo(asNeedle.needleMass, 12);
  });

  it('has no margins when every dictionary row holds needle tokens', () => {
    const seq = randomSeq(5, 8, 3, 2);
    // Chunk 4: at p = 7 only tokens 0–3 are absorbed, all of them needle tokens.
    const t = traceHead(seq, { chunkSize: 4, capacity: 4, beta: 2 }, { at: 0, tokens: 6 }, [7]);
    expect(t.rows).toBeGreaterThan(0);
    expect(t.similarityRank).toBe(0);
    for (const x of [t.similarityMargin, t.priorMargin, t.needleKeyCosine])
      expect(Number.isNaN(x)).toBe(true);
  });

  it('refuses a scored position inside the needle and an empty list', () => {
    const seq = randomSeq(1, 20, 2, 2);
    const config = { chunkSize: 4, capacity: 4, beta: 1 };
    expect(() => traceHead(seq, config, { at: 10, tokens: 6 }, [12])).toThrow(
      /scored position 12.*after the needle/,
    );
    expect(() => traceHead(seq, config, { at: 2, tokens: 3 }, [])).toThrow(/at least one/);
  });
});

describe('absorbDistances', () => {
  it.each([
    ['saturating growth', { chunkSize: 4, capacity: 6, beta: 2 }],
    [
      'log growth, novelty spawn',
      { chunkSize: 5, capacity: 9, beta: 2, growth: 'full', spawnDistance: 0.8 },
    ],
    ['raw keys', { chunkSize: 4, capacity: 5, beta: 2, normalize: false }],
  ] as const)(
    'is the squared distance to the nearest row of the dictionary before each absorb (%s)',
    (_, config) => {
      const seq = randomSeq(21, 43, 3, 2);
      // Keys of several lengths: where the config normalises, distances are between unit keys.
      for (let i = 0; i < seq.k.length; i++) seq.k[i] *= 1 + (i % 5);
      const C = config.chunkSize;
      const distances = absorbDistances(seq, config);
      expect(distances).toHaveLength(43);
      const normalize = !('normalize' in config);
      let checked = 0;
      for (let t = 0; t < 43; t++) {
        const start = Math.floor(t / C) * C;
        // The rows as the reference has them after the chunks before t's, by a separate replay.
        const rows = ovqAttentionReference(prefix(seq, start), config).state;
        if (start + C > 43 || rows.size === 0) {
          expect(Number.isNaN(distances[t]), `token ${t}`).toBe(true);
          continue;
        }
        const k = Array.from(seq.k.subarray(t * 3, t * 3 + 3));
        const norm = normalize ? Math.hypot(...k) : 1;
        let nearest = Number.POSITIVE_INFINITY;
        for (let i = 0; i < rows.size; i++) {
          let d2 = 0;
          for (let d = 0; d < 3; d++) d2 += (k[d] / norm - rows.centroidKeys[i * 3 + d]) ** 2;
          nearest = Math.min(nearest, d2);
        }
        expect(distances[t]).toBeCloseTo(nearest, 12);
        checked++;
      }
      // Every token from the second chunk to the last whole chunk was checked.
      expect(checked).toBe(Math.floor(43 / C) * C - C);
    },
  );

  it('finds the copies of a needle far from filler rows, and novelty spawn beyond them gives them a row', () => {
    const T = 64;
    const seq = randomSeq(31, T, 3, 2);
    // Filler keys near e1, the needle span (32–35) too; its copies (36–41, within 8 tokens after
    // its key token 33) along e2. Saturating growth makes no row after token 32 here.
    for (let t = 0; t < T; t++) seq.k.set([1, 0.05 * (t % 3), 0.05 * (t % 2)], t * 3);
    for (let t = 36; t <= 41; t++) seq.k.set([0.02, 1, 0], t * 3);
    const needle = { at: 32, tokens: 4 };
    const config = { chunkSize: 4, capacity: 6, beta: 2 };
    const novelty = copyNovelty(absorbDistances(seq, config), needle, 33, 60, 8);
    // Unit keys: e1 against e2 is a squared distance near 2; filler lies within 0.01 of a row.
    expect(novelty.copyDistance).toBeGreaterThan(1.5);
    expect(novelty.fillerDistanceMax).toBeLessThan(0.05);
    expect(novelty.fillerDistance).toBeLessThanOrEqual(novelty.fillerDistanceMax);
    // Only tokens 36–41 (after the needle, within 8 of its key) are copies; 42–59 are filler.
    const traced = traceHead(seq, config, needle, [61], { keyAt: 33, questionAt: 60, window: 8 });
    expect(traced.copyDistance).toBe(novelty.copyDistance);
    expect(traced.fillerDistanceMax).toBe(novelty.fillerDistanceMax);
    expect(Number.isNaN(traceHead(seq, config, needle, [61]).copyDistance)).toBe(true);
    // A threshold between the two files the copies in a row of their own, one beyond both does not.
    const spawned = (spawnDistance: number) =>
      ovqAttentionReference(seq, { ...config, spawnDistance }).trace.some(
        (r, j) => j * 4 === 36 && r.spawned.length > 0,
      );
    expect(spawned(1)).toBe(true);
    expect(spawned(3)).toBe(false);
  });

  it('is NaN where nothing qualifies', () => {
    const distances = Float64Array.from({ length: 20 }, () => Number.NaN);
    const none = copyNovelty(distances, { at: 2, tokens: 3 }, 3, 18, 4);
    for (const x of Object.values(none)) expect(Number.isNaN(x)).toBe(true);
  });
});

describe('traceNeedles on a decoder', () => {
  it('traces every OVQ head of every sequence; its accuracy is the evaluation metric on the same batch', async () => {
    const needleLength = 2;
    const task = niahTask({ needleLength, depth: 0.5 });
    const vocab = niahVocabulary({ needleLength });
    const model = tinyOvqDecoder(vocab.vocabSize, 4);
    const T = 64;
    const batch = evaluationBatch(task, 3, T, 0) as TokenBatch;
    const traces = await traceNeedles(model, batch, vocab, needleLength);
    // Layers 1 and 3 are OVQ: 2 layers × 3 sequences × 2 heads.
    expect(traces).toHaveLength(12);
    expect(new Set(traces.map((t) => t.layer))).toEqual(new Set([1, 3]));
    for (const t of traces) {
      expect(batch.inputs[t.sequence * T + t.needleAt]).toBe(vocab.needle);
      expect(t.needleTokens).toBe(needleLength + 2);
      expect(t.needleMass).toBeGreaterThan(0);
      expect(t.needleMass).toBeLessThanOrEqual(t.readWeight + 1e-12);
      expect(t.readWeight).toBeLessThanOrEqual(1 + 1e-12);
      expect(t.rows).toBeGreaterThan(0);
      expect(t.rows).toBeLessThanOrEqual(5);
      expect(t.keyTwinsInWindow).toBeGreaterThanOrEqual(0);
      expect(t.keyTwinsInWindow).toBeLessThanOrEqual(t.keyTwins);
    }
    const summary = summarizeNeedleTraces(traces);
    expect(summary).toHaveLength(4);
    expect(summary.every((s) => s.sequences === 3)).toBe(true);
    const evaluation = await evaluate(model, task, T, 1, 3, 0);
    expect(summary[0].correct).toBeCloseTo(evaluation.metric, 12);
    model.dispose();
  });

  it('with several needles traces the asked one, not the first', async () => {
    const needleLength = 2;
    const vocab = niahVocabulary({ needleLength });
    const model = tinyOvqDecoder(vocab.vocabSize, 2);
    const T = 64;
    const batch = evaluationBatch(
      niahTask({ needleLength, depth: 0.9, needles: 3 }),
      4,
      T,
      0,
    ) as TokenBatch;
    const traces = await traceNeedles(model, batch, vocab, needleLength);
    let afterAnother = 0;
    for (const t of traces) {
      const row = batch.inputs.subarray(t.sequence * T, (t.sequence + 1) * T);
      expect(row[t.needleAt]).toBe(vocab.needle);
      expect(row[t.needleAt + 1]).toBe(row[row.lastIndexOf(vocab.query) + 1]);
      if (row.indexOf(vocab.needle) < t.needleAt) afterAnother++;
    }
    // At depth 0.9 the asked needle mostly follows a distractor: the first marker is not it.
    expect(afterAnother).toBeGreaterThan(0);
    model.dispose();
  });

  it('needleAnswers tells an answer from the asked needle from one copied from another', async () => {
    const needleLength = 2;
    const vocab = niahVocabulary({ needleLength });
    const T = 64;
    const batch = evaluationBatch(
      niahTask({ needleLength, depth: 0.5, needles: 3 }),
      4,
      T,
      0,
    ) as TokenBatch;
    const markers = (b: number) => {
      const row = batch.inputs.subarray(b * T, (b + 1) * T);
      const q = row.lastIndexOf(vocab.query);
      const all = [...row.keys()].filter((t) => t < q && row[t] === vocab.needle);
      const asked = all.find((t) => row[t + 1] === row[q + 1])!;
      return { row, asked, others: all.filter((t) => t !== asked) };
    };
    // A stand-in model whose argmax at scored token j of sequence b is value token j of the
    // needle `pick(b)` chooses (a Decoder needs only forwardAt here).
    const answering = (pick: (b: number) => number) =>
      ({
        forwardAt: (_inputs: tf.Tensor, positions: Int32Array) => {
          const tokens = Array.from(positions, (p) => {
            const b = Math.floor(p / T);
            const j = (p % T) - (markers(b).row.lastIndexOf(vocab.query) + 1);
            return markers(b).row[pick(b) + 2 + j];
          });
          return tf.oneHot(tf.tensor1d(tokens, 'int32'), vocab.vocabSize).toFloat();
        },
      }) as unknown as Decoder;
    const agree = (b: number, a: number, c: number) => {
      const { row } = markers(b);
      return [0, 1].filter((j) => row[a + 2 + j] === row[c + 2 + j]).length / 2;
    };
    const keyed = await needleAnswers(
      answering((b) => markers(b).asked),
      batch,
      vocab,
      needleLength,
    );
    const copied = await needleAnswers(
      answering((b) => markers(b).others[0]),
      batch,
      vocab,
      needleLength,
    );
    for (let b = 0; b < 4; b++) {
      const { asked, others } = markers(b);
      expect(keyed[b].asked).toBe(1);
      expect(keyed[b].other).toBe(Math.max(...others.map((o) => agree(b, asked, o))));
      expect(copied[b].other).toBe(1);
      expect(copied[b].asked).toBe(agree(b, asked, others[0]));
    }
    // `asked` is the accuracy needleAccuracy reports.
    const accuracy = await needleAccuracy(
      answering((b) => markers(b).others[0]),
      batch,
      vocab,
      needleLength,
    );
    expect(copied.map((a) => a.asked)).toEqual(accuracy);
  });

  it('names a sequence without a question, or without a needle under the asked key before it', async () => {
    const vocab = niahVocabulary({ needleLength: 2 });
    const model = tinyOvqDecoder(vocab.vocabSize, 2);
    const batch: TokenBatch = {
      kind: 'tokens',
      batch: 1,
      seqLen: 16,
      vocabSize: vocab.vocabSize,
      inputs: new Int32Array(16),
      targets: new Int32Array(16).fill(-100),
    };
    await expect(traceNeedles(model, batch, vocab, 2)).rejects.toThrow(
      /sequence 0 has no QUERY token \(\d+\)/,
    );
    // A question for key 0, a needle under key 1 before it: not the asked needle.
    batch.inputs.set([vocab.query, vocab.keyBase], 12);
    batch.inputs.set([vocab.needle, vocab.keyBase + 1], 3);
    await expect(traceNeedles(model, batch, vocab, 2)).rejects.toThrow(
      /sequence 0 has no NEEDLE token \(\d+\) under the asked key before its question/,
    );
    // With the asked needle after the question it is still missing.
    batch.inputs.set([vocab.needle, vocab.keyBase], 14);
    await expect(traceNeedles(model, batch, vocab, 2)).rejects.toThrow(/under the asked key/);
    model.dispose();
  });
});
