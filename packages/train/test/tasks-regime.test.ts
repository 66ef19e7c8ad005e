// The long-context tasks of the regime experiment: zoology's MQAR training mixture and NIAH-S1.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IGNORE, mqarMixtureTask, mqarTask, niahTask, niahVocabulary } from '../src/index.js';

describe('mqar-mixture', () => {
  const slices = [
    { seqLen: 64, numPairs: 4 },
    { seqLen: 128, numPairs: 8 },
    { seqLen: 256, numPairs: 16, weight: 2 },
  ];
  const task = mqarMixtureTask({ vocabSize: 8192, slices });

  it('writes each row from one slice, pads the rest unscored, and keeps keys/values disjoint', () => {
    const b = task.sample(300, 256, 11);
    const seen = new Map<number, number>();
    for (let s = 0; s < 300; s++) {
      const row = b.inputs.subarray(s * 256, (s + 1) * 256);
      const target = b.targets.subarray(s * 256, (s + 1) * 256);
      const scored = [...target.keys()].filter((t) => target[t] !== IGNORE);
      const pairs = scored.length;
      const slice = slices.find((x) => x.numPairs === pairs);
      expect(slice, `row ${s} has ${pairs} queries`).toBeDefined();
      seen.set(pairs, (seen.get(pairs) ?? 0) + 1);
      for (let t = slice!.seqLen; t < 256; t++) {
        expect(row[t]).toBe(0);
        expect(target[t]).toBe(IGNORE);
      }
      const value = new Map<number, number>();
      for (let i = 0; i < pairs; i++) {
        expect(row[2 * i]).toBeLessThan(4096);
        expect(row[2 * i + 1]).toBeGreaterThanOrEqual(4096);
        value.set(row[2 * i], row[2 * i + 1]);
      }
      for (const t of scored) {
        expect(t).toBeLessThan(slice!.seqLen);
        expect(value.get(row[t])).toBe(target[t]);
      }
    }
    // Weighted draw: the weight-2 slice is about half the rows, the others a quarter each.
    expect(seen.get(16)!).toBeGreaterThan(110);
    expect(seen.get(4)!).toBeGreaterThan(40);
    expect(seen.get(8)!).toBeGreaterThan(40);
  });

  it('is deterministic per seed', () => {
    expect(task.sample(4, 256, 3)).toEqual(task.sample(4, 256, 3));
    expect(task.sample(4, 256, 4).inputs).not.toEqual(task.sample(4, 256, 3).inputs);
  });

  it('a single slice at full length equals plain mqar', () => {
    const one = mqarMixtureTask({ vocabSize: 512, slices: [{ seqLen: 128, numPairs: 8 }] });
    const plain = mqarTask({ vocabSize: 512, numPairs: 8 });
    const a = one.sample(3, 128, 9);
    const b = plain.sample(3, 128, 9);
    // The mixture draws the slice first, so the streams differ; the structure must not.
    expect(a.targets.filter((y) => y !== IGNORE).length).toBe(
      b.targets.filter((y) => y !== IGNORE).length,
    );
  });

  it('refuses a vocabulary not larger than a slice (zoology) and names the slice', () => {
    expect(() =>
      mqarMixtureTask({ vocabSize: 128, slices: [{ seqLen: 256, numPairs: 8 }] }),
    ).toThrow(/slices\[0\]\.seqLen is 256; expected < vocabSize = 128/);
    expect(() => mqarMixtureTask({ vocabSize: 8192, slices: [] })).toThrow(/slices is empty/);
    expect(() => task.sample(2, 128, 0)).toThrow(
      /seqLen is 128; expected an integer ≥ the longest slice \(256\)/,
    );
    expect(() =>
      mqarMixtureTask({ vocabSize: 8192, slices: [{ seqLen: 64, numPairs: 4, weight: 0 }] }),
    ).toThrow(/slices\[0\]\.weight is 0/);
  });
});

describe('niah', () => {
  const vocab = niahVocabulary();

  it('hides one marked needle in filler and asks for its value at the end', () => {
    const task = niahTask({ needleLength: 4 });
    const b = task.sample(50, 200, 7);
    expect(b.vocabSize).toBe(vocab.vocabSize);
    for (let s = 0; s < 50; s++) {
      const row = b.inputs.subarray(s * 200, (s + 1) * 200);
      const target = b.targets.subarray(s * 200, (s + 1) * 200);
      const needles = [...row.keys()].filter((t) => row[t] === vocab.needle);
      expect(needles).toHaveLength(1);
      const at = needles[0];
      const q = 200 - 6;
      expect(row[q]).toBe(vocab.query);
      expect(row[q + 1]).toBe(row[at + 1]);
      const value = [...row.subarray(at + 2, at + 6)];
      for (const x of value) expect(x).toBeGreaterThanOrEqual(vocab.valueBase);
      const scored = [...target.keys()].filter((t) => target[t] !== IGNORE);
      expect(scored).toEqual([q + 1, q + 2, q + 3, q + 4]);
      expect(scored.map((t) => target[t])).toEqual(value);
      // Filler never uses needle tokens.
      for (let t = 0; t < 200; t++) {
        if (t >= at && t < at + 6) continue;
        if (t >= q) continue;
        expect(row[t]).toBeLessThan(vocab.fillerSize);
      }
    }
  });

  it('puts the needle at the asked depth', () => {
    for (const depth of [0, 0.5, 1]) {
      const b = niahTask({ depth }).sample(3, 412, 1);
      for (let s = 0; s < 3; s++) {
        const row = b.inputs.subarray(s * 412, (s + 1) * 412);
        const at = row.indexOf(vocab.needle);
        expect(at).toBe(Math.round(depth * (412 - 12)));
      }
    }
  });

  it('takes corpus bytes as filler', () => {
    const docs = [
      {
        name: 'a',
        bytes: new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(40)),
      },
    ];
    const task = niahTask({ filler: docs, needleLength: 2 });
    const b = task.sample(2, 128, 3);
    const v = niahVocabulary({ filler: docs });
    expect(v.fillerSize).toBe(256);
    expect(b.vocabSize).toBe(v.vocabSize);
    const text = [...b.inputs.subarray(0, 20)].filter((x) => x < 256);
    expect(text.length).toBeGreaterThan(10);
  });

  it('draws the same single-needle sequences as the generator behind the committed results', () => {
    // Fingerprints of batches from the generator before it learned several needles (every NIAH
    // number in apps/trainer/RESULTS.md was scored on its sequences); one needle must not change them.
    const fingerprint = (options: Parameters<typeof niahTask>[0], T: number) => {
      const b = niahTask(options).sample(16, T, 9);
      return createHash('sha256')
        .update(Buffer.from(b.inputs.buffer))
        .update(Buffer.from(b.targets.buffer))
        .digest('hex')
        .slice(0, 16);
    };
    expect(fingerprint({}, 200)).toBe('c7e8dbc57aaff51e');
    expect(fingerprint({ depth: 0.5, needles: 1 }, 412)).toBe('1d76f072e50a3145');
    expect(fingerprint({ depth: 1, needleLength: 2 }, 64)).toBe('07ae1df9b0331a14');
  });

  it('hides several needles under distinct keys and asks for the one at the depth (NIAH-MK)', () => {
    const T = 300;
    const span = 6;
    for (const depth of [0, 0.5, 1, undefined]) {
      const b = niahTask({ needles: 4, depth }).sample(40, T, 5);
      for (let s = 0; s < 40; s++) {
        const row = b.inputs.subarray(s * T, (s + 1) * T);
        const target = b.targets.subarray(s * T, (s + 1) * T);
        const q = T - span;
        const markers = [...row.keys()].filter((t) => row[t] === vocab.needle);
        expect(markers).toHaveLength(4);
        // Whole spans, none overlapping another or the question; filler everywhere else.
        markers.forEach((at, j) => {
          if (j > 0) expect(at - markers[j - 1]).toBeGreaterThanOrEqual(span);
          expect(at + span).toBeLessThanOrEqual(q);
          expect(row[at + 1]).toBeGreaterThanOrEqual(vocab.keyBase);
          expect(row[at + 1]).toBeLessThan(vocab.valueBase);
        });
        const keys = markers.map((at) => row[at + 1]);
        expect(new Set(keys).size).toBe(4);
        // The question's key is one needle's; its value is what is scored.
        const asked = markers.filter((at) => row[at + 1] === row[q + 1]);
        expect(asked).toHaveLength(1);
        const value = [...row.subarray(asked[0] + 2, asked[0] + span)];
        const scored = [...target.keys()].filter((t) => target[t] !== IGNORE);
        expect(scored.map((t) => target[t])).toEqual(value);
        for (let t = 0; t < q; t++)
          if (!markers.some((at) => t >= at && t < at + span))
            expect(row[t]).toBeLessThan(vocab.fillerSize);
        if (depth === 0) expect(asked[0]).toBe(0);
        if (depth === 1) expect(asked[0]).toBe(q - span);
      }
    }
  });

  it('rejects bad options with their names', () => {
    expect(() => niahTask({ needles: 0 })).toThrow(
      /needles is 0; expected an integer in \[1, 256\]/,
    );
    expect(() => niahTask({ needles: 1.5 })).toThrow(/needles is 1.5/);
    expect(() => niahTask({ needles: 257 })).toThrow(/needles is 257/);
    expect(() => niahTask({ needles: 3 }).sample(1, 24, 0)).toThrow(
      /seqLen is 24; expected an integer ≥ 25/,
    );
    expect(() => niahTask({ depth: 1.5 })).toThrow(/depth is 1.5/);
    expect(() => niahTask({ needleLength: 0 })).toThrow(/needleLength is 0/);
    expect(() => niahTask().sample(1, 10, 0)).toThrow(/seqLen is 10/);
  });
});
