import { describe, expect, it } from 'vitest';
import {
  basicRecallTask,
  byteLmTask,
  IGNORE,
  linearRegressionTask,
  loadBrownCorpus,
  maskedMse,
  mqarTask,
  positionalRecallTask,
  splitDocuments,
  stripBrownTags,
  tokenAccuracy,
} from '../src/index.js';

describe('mqar', () => {
  const task = mqarTask({ vocabSize: 64, numPairs: 6 });
  it('is deterministic per seed and differs across seeds', () => {
    expect(task.sample(3, 64, 5)).toEqual(task.sample(3, 64, 5));
    expect(task.sample(3, 64, 6).inputs).not.toEqual(task.sample(3, 64, 5).inputs);
  });
  it('pairs keys (lower half) with values (upper half) and queries each key once with its value', () => {
    const b = task.sample(20, 64, 1);
    for (let s = 0; s < 20; s++) {
      const row = b.inputs.subarray(s * 64, (s + 1) * 64);
      const target = b.targets.subarray(s * 64, (s + 1) * 64);
      const pairs = new Map<number, number>();
      for (let i = 0; i < 6; i++) {
        expect(row[2 * i]).toBeGreaterThanOrEqual(1);
        expect(row[2 * i]).toBeLessThan(32);
        expect(row[2 * i + 1]).toBeGreaterThanOrEqual(32);
        pairs.set(row[2 * i], row[2 * i + 1]);
      }
      const queried: number[] = [];
      target.forEach((y, t) => {
        if (y === IGNORE) return;
        expect(t).toBeGreaterThanOrEqual(12);
        expect((t - 12) % 2).toBe(0);
        expect(pairs.get(row[t])).toBe(y);
        queried.push(row[t]);
      });
      expect(queried.sort()).toEqual([...pairs.keys()].sort());
    }
  });
  it('draws short gaps more often than long ones (power law)', () => {
    const b = mqarTask({ vocabSize: 512, numPairs: 4 }).sample(400, 256, 3);
    let near = 0;
    let far = 0;
    b.targets.forEach((y, i) => {
      if (y === IGNORE) return;
      const gap = ((i % 256) - 8) / 2;
      if (gap < 31) near++;
      else if (gap >= 93) far++;
    });
    expect(near).toBeGreaterThan(far);
  });
  it('rejects impossible shapes with the argument named', () => {
    expect(() => task.sample(1, 63, 0)).toThrow(/mqar: seqLen is 63; expected an even number/);
    expect(() => mqarTask({ vocabSize: 10, numPairs: 5 })).toThrow(/numPairs is 5/);
  });
});

describe('recall tasks', () => {
  it('basic recall scores the last queries on the paired value', () => {
    const b = basicRecallTask({ vocabSize: 100, numPairs: 10, queries: 4 }).sample(5, 80, 2);
    for (let s = 0; s < 5; s++) {
      const o = s * 80;
      const pairs = new Map<number, number>();
      for (let i = 0; i < 10; i++) pairs.set(b.inputs[o + 2 * i], b.inputs[o + 2 * i + 1]);
      for (let t = 0; t < 80; t++) {
        const y = b.targets[o + t];
        if (t < 76) expect(y).toBe(IGNORE);
        else expect(pairs.get(b.inputs[o + t])).toBe(y);
      }
    }
  });
  it('positional recall asks for the token that followed the query in the run', () => {
    const b = positionalRecallTask({ vocabSize: 128 }).sample(4, 40, 9);
    for (let s = 0; s < 4; s++) {
      const row = Array.from(b.inputs.subarray(s * 40, s * 40 + 40));
      expect(new Set(row.slice(0, 20)).size).toBe(20);
      for (let t = 20; t < 40; t++) {
        const i = row.indexOf(row[t]);
        expect(i).toBeLessThan(19);
        expect(b.targets[s * 40 + t]).toBe(row[i + 1]);
      }
    }
  });
  it('token accuracy counts only scored positions', () => {
    const b = basicRecallTask({ vocabSize: 20, numPairs: 3, queries: 2 }).sample(1, 10, 0);
    const perfect = Array.from(b.targets);
    expect(tokenAccuracy(b, perfect).accuracy).toBe(1);
    const wrong = perfect.map((y) => (y === IGNORE ? 0 : y + 1));
    const r = tokenAccuracy(b, wrong);
    expect(r.accuracy).toBe(0);
    expect(r.scored).toBe(2);
  });
});

describe('in-context linear regression', () => {
  it('reveals y = W_f x after each scored x, with F functions interleaved', () => {
    const task = linearRegressionTask({ functions: 3, inputDim: 2, outputDim: 1 });
    const b = task.sample(2, 200, 4);
    const width = 3 + 2 + 1;
    expect(b.inputDim).toBe(width);
    // Recover each function from its first two examples and check it predicts all later ones.
    for (let s = 0; s < 2; s++) {
      const seen = new Map<number, number[][]>();
      for (let item = 0; item < 100; item++) {
        const tx = s * 200 + 2 * item;
        const f = [0, 1, 2].find((j) => b.inputs[tx * width + j] === 1)!;
        const x = [b.inputs[tx * width + 3], b.inputs[tx * width + 4]];
        expect(b.mask[tx]).toBe(1);
        expect(b.mask[tx + 1]).toBe(0);
        expect(b.inputs[(tx + 1) * width + 5]).toBe(b.targets[tx]);
        const rows = seen.get(f) ?? [];
        rows.push([...x, b.targets[tx]]);
        seen.set(f, rows);
      }
      for (const rows of seen.values()) {
        const [[a, c, y1], [d, e, y2]] = rows;
        const det = a * e - c * d;
        const w = [(y1 * e - c * y2) / det, (a * y2 - y1 * d) / det];
        for (const [x0, x1, y] of rows)
          expect(Math.abs(w[0] * x0 + w[1] * x1 - y)).toBeLessThan(1e-3);
      }
    }
    expect(maskedMse(b, b.targets)).toBe(0);
  });
});

describe('byte-level language modelling', () => {
  it('strips Brown tags back to prose', () => {
    expect(stripBrownTags("\tThe/at jury/nn said/vbd ``/`` no/at ,/, evidence/nn ''/'' ./.")).toBe(
      'The jury said " no, evidence ".',
    );
  });
  it('loads the default corpus and splits it by whole document', async () => {
    const docs = await loadBrownCorpus();
    expect(docs.length).toBe(500);
    expect(new TextDecoder().decode(docs[0].bytes.subarray(0, 30))).toBe(
      'The Fulton County Grand Jury s',
    );
    const { train, validation } = splitDocuments(docs);
    expect(validation.length).toBe(50);
    const names = new Set(train.map((d) => d.name));
    expect(validation.some((d) => names.has(d.name))).toBe(false);
    const task = byteLmTask(validation, 'brown-validation');
    const b = task.sample(2, 128, 1);
    expect(b.vocabSize).toBe(256);
    expect(b.inputs.subarray(1, 128)).toEqual(b.targets.subarray(0, 127));
  });
});

describe('positional recall with a fixed run', () => {
  it('keeps the run length at longer sequences and queries it from further away', () => {
    const task = positionalRecallTask({ vocabSize: 40, runLength: 16 });
    const b = task.sample(2, 128, 3);
    for (let s = 0; s < 2; s++) {
      const row = Array.from(b.inputs.subarray(s * 128, s * 128 + 128));
      expect(new Set(row.slice(0, 16)).size).toBe(16);
      for (let t = 16; t < 128; t++)
        expect(b.targets[s * 128 + t]).toBe(row[row.indexOf(row[t]) + 1]);
    }
    expect(() => task.sample(1, 16, 0)).toThrow(/run of 16 tokens at seqLen 16/);
  });
});
