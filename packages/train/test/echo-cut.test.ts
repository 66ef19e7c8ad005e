import '@tensorflow/tfjs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createTfjsMixer,
  Decoder,
  echoCut,
  evaluate,
  evaluationBatch,
  needleAccuracy,
  niahTask,
  niahVocabulary,
  type TokenBatch,
  traceNeedles,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const needleLength = 2;
const vocab = niahVocabulary({ needleLength });
const T = 64;

function decoder(mixers: string, layers: number, window = 4): Decoder {
  const model = new Decoder(
    {
      vocabSize: vocab.vocabSize,
      dModel: 8,
      heads: 2,
      layers,
      mixers,
      mixerOptions: { window, ovqCapacity: 5, ovqChunkSize: 4 },
      seed: 5,
    },
    createTfjsMixer,
  );
  model.build();
  return model;
}

function needlesAndQuestions(batch: TokenBatch) {
  const needles: number[] = [];
  const questions: number[] = [];
  for (let b = 0; b < batch.batch; b++) {
    const row = batch.inputs.subarray(b * T, (b + 1) * T);
    needles.push(row.indexOf(vocab.needle));
    questions.push(row.lastIndexOf(vocab.query));
  }
  return { needles, questions };
}

const rowsOf = (x: tf.Tensor) => x.arraySync() as number[][][];

function expectClose(got: number[], want: number[], digits: number) {
  for (const [d, x] of got.entries()) expect(x).toBeCloseTo(want[d], digits);
}

describe('echoCut', () => {
  it('replaces only the needle span with filler and masks the (W − 1)·blocks tokens after it', () => {
    const model = decoder('swa,ovq', 2, 4);
    const batch = evaluationBatch(niahTask({ needleLength, depth: 0.5 }), 3, T, 0) as TokenBatch;
    const where = needlesAndQuestions(batch);
    const cut = echoCut(model, batch, vocab, needleLength, where);
    expect(cut.afterLayer).toBe(0);
    for (let b = 0; b < 3; b++) {
      const at = where.needles[b];
      const last = at + needleLength + 1;
      for (let t = 0; t < T; t++) {
        const i = b * T + t;
        if (t >= at && t <= last) expect(cut.source[i]).toBeLessThan(vocab.fillerSize);
        else expect(cut.source[i]).toBe(batch.inputs[i]);
        // Window 4: tokens last + 1 … last + 3 read the needle's last token in block 0.
        expect(cut.mask[i]).toBe(t > last && t <= last + 3 ? 1 : 0);
      }
    }
    expect(cut.cut).toEqual([3, 3, 3]);
    model.dispose();
  });

  it('stops at the question and reaches (W − 1) tokens further per sliding-window block', () => {
    const batch = evaluationBatch(niahTask({ needleLength, depth: 1 }), 2, T, 0) as TokenBatch;
    const where = needlesAndQuestions(batch);
    const model = decoder('swa,ovq', 2, 8);
    const cut = echoCut(model, batch, vocab, needleLength, where);
    for (let b = 0; b < 2; b++) {
      const last = where.needles[b] + needleLength + 1;
      expect(cut.cut[b]).toBe(Math.min(7, where.questions[b] - 1 - last));
      expect(cut.mask[b * T + where.questions[b]]).toBe(0);
    }
    model.dispose();
    const deep = decoder('swa,swa,ovq', 3, 4);
    const far = evaluationBatch(niahTask({ needleLength, depth: 0.3 }), 1, T, 0) as TokenBatch;
    const farCut = echoCut(deep, far, vocab, needleLength, needlesAndQuestions(far));
    expect(farCut.afterLayer).toBe(1);
    expect(farCut.cut).toEqual([6]);
    deep.dispose();
  });

  it('the decoy control cuts a needle-long span of filler between the needle and the question, away from both', () => {
    const model = decoder('swa,ovq', 2, 4);
    const batch = evaluationBatch(niahTask({ needleLength, depth: 0.2 }), 3, T, 0) as TokenBatch;
    const where = needlesAndQuestions(batch);
    const decoy = echoCut(model, batch, vocab, needleLength, where, { decoy: true });
    expect(decoy.cut).toEqual([3, 3, 3]);
    for (let b = 0; b < 3; b++) {
      const needleEnd = where.needles[b] + needleLength + 1;
      const changed: number[] = [];
      const masked: number[] = [];
      for (let t = 0; t < T; t++) {
        if (decoy.source[b * T + t] !== batch.inputs[b * T + t]) changed.push(t);
        if (decoy.mask[b * T + t] === 1) masked.push(t);
      }
      // The decoy's span lies past the needle's reach; its cut tokens follow it, and end more
      // than W − 1 tokens before the question (outside every scored position's window).
      for (const t of changed) {
        expect(t).toBeGreaterThan(needleEnd + 3);
        expect(batch.inputs[b * T + t]).toBeLessThan(vocab.fillerSize);
      }
      expect(masked[0]).toBe(Math.max(...changed) + 1);
      expect(Math.max(...masked)).toBeLessThan(where.questions[b] - 3);
    }
    // No room between the needle's reach and the question's window: nothing is cut.
    const late = evaluationBatch(niahTask({ needleLength, depth: 0.9 }), 1, T, 0) as TokenBatch;
    const none = echoCut(model, late, vocab, needleLength, needlesAndQuestions(late), {
      decoy: true,
    });
    expect(none.cut).toEqual([0]);
    expect(none.mask.every((m) => m === 0)).toBe(true);
    model.dispose();
  });

  it('cuts after the sliding-window blocks below the first long-range mixer, and needs one', () => {
    const batch = evaluationBatch(niahTask({ needleLength, depth: 0.5 }), 1, T, 0) as TokenBatch;
    const where = needlesAndQuestions(batch);
    for (const mixers of ['ovq,swa', 'swa']) {
      const model = decoder(mixers, 2);
      expect(() => echoCut(model, batch, vocab, needleLength, where)).toThrow(
        /expected a long-range mixer above one or more swa blocks/,
      );
      model.dispose();
    }
    const gdn = decoder('swa,gdn,ovq', 3);
    expect(echoCut(gdn, batch, vocab, needleLength, where).afterLayer).toBe(0);
    gdn.dispose();
  });

  it('leaves the OVQ layer reading the needle-free run at every haystack token after the needle, and the real run before it', () => {
    // Two SWA blocks below OVQ: the needle reaches 2·(W − 1) tokens; a cut one token short fails.
    const model = decoder('swa,swa,ovq', 3, 4);
    const batch = evaluationBatch(niahTask({ needleLength, depth: 0.4 }), 2, T, 0) as TokenBatch;
    const where = needlesAndQuestions(batch);
    const cut = echoCut(model, batch, vocab, needleLength, where);
    const inputs = tf.tensor2d(batch.inputs, [2, T], 'int32');
    const source = tf.tensor2d(cut.source, [2, T], 'int32');
    const mask = tf.tensor2d(cut.mask, [2, T]);
    const patched = rowsOf(model.layerInput(inputs, 2, { afterLayer: 1, source, mask }));
    const real = rowsOf(model.layerInput(inputs, 2));
    const needleFree = rowsOf(model.layerInput(source, 2));
    let echoed = 0;
    for (let b = 0; b < 2; b++) {
      const last = where.needles[b] + needleLength + 1;
      for (let t = 0; t < where.questions[b]; t++) {
        const want = t <= last ? real[b][t] : needleFree[b][t];
        expectClose(patched[b][t], want, 5);
        if (t > last && Math.abs(real[b][t][0] - needleFree[b][t][0]) > 1e-3) echoed++;
      }
    }
    // The cut is not vacuous: the real run's tokens after the needle did carry it.
    expect(echoed).toBeGreaterThan(4);
    // Patching a layer with the inputs themselves changes nothing.
    const same = rowsOf(model.layerInput(inputs, 2, { afterLayer: 1, source: inputs, mask }));
    for (const [b, row] of same.entries())
      for (const [t, x] of row.entries()) expectClose(x, real[b][t], 6);
    tf.dispose([inputs, source, mask]);
    model.dispose();
  });

  it('names a patch that does not fit the inputs', () => {
    const model = decoder('swa,ovq', 2);
    const inputs = tf.zeros([2, 8], 'int32');
    const mask = tf.zeros([2, 8]);
    expect(() =>
      model.forwardAt(inputs, Int32Array.of(0), { afterLayer: 2, source: inputs, mask }),
    ).toThrow(/patch.afterLayer: got 2; expected an integer in \[0, 2\)/);
    const short = tf.zeros([2, 7], 'int32');
    expect(() =>
      model.forwardAt(inputs, Int32Array.of(0), { afterLayer: 0, source: short, mask }),
    ).toThrow(/patch.source: shape \[2,7\]; expected the inputs' \[2,8\]/);
    expect(() =>
      model.forwardAt(inputs, Int32Array.of(0), {
        afterLayer: 0,
        source: inputs,
        mask: tf.zeros([2, 7]),
      }),
    ).toThrow(/patch.mask: shape \[2,7\]; expected \[batch, time\] = \[2,8\]/);
    tf.dispose([inputs, mask, short]);
    model.dispose();
  });
});

describe('traceNeedles with cutEcho', () => {
  it('changes nothing where the question follows the needle at once, and the read elsewhere', async () => {
    const model = decoder('swa,ovq', 2, 4);
    const adjacent = evaluationBatch(niahTask({ needleLength, depth: 1 }), 2, T, 0) as TokenBatch;
    const where = needlesAndQuestions(adjacent);
    // depth 1: the question comes right after the needle, so nothing lies between to cut.
    expect(echoCut(model, adjacent, vocab, needleLength, where).cut).toEqual([0, 0]);
    const plain = await traceNeedles(model, adjacent, vocab, needleLength);
    const cut = await traceNeedles(model, adjacent, vocab, needleLength, { cutEcho: true });
    expect(cut).toEqual(plain);
    const mid = evaluationBatch(niahTask({ needleLength, depth: 0.5 }), 2, T, 0) as TokenBatch;
    const before = await traceNeedles(model, mid, vocab, needleLength);
    const after = await traceNeedles(model, mid, vocab, needleLength, { cutEcho: true });
    expect(after.map((t) => t.needleMass)).not.toEqual(before.map((t) => t.needleMass));
    // The needle's own tokens are untouched: the rows they seeded are the same.
    expect(after.map((t) => t.seeded)).toEqual(before.map((t) => t.seeded));
    model.dispose();
  });
});

describe('needleAccuracy', () => {
  it('is the evaluation metric on the batch for any long-range mixer, and the trace accuracy under the cut', async () => {
    const task = niahTask({ needleLength, depth: 0.5 });
    const batch = evaluationBatch(task, 3, T, 0) as TokenBatch;
    const gdn = decoder('swa,gdn', 2);
    const plain = await needleAccuracy(gdn, batch, vocab, needleLength);
    const evaluation = await evaluate(gdn, task, T, 1, 3, 0);
    expect(plain.reduce((a, x) => a + x, 0) / 3).toBeCloseTo(evaluation.metric, 12);
    // A Gated DeltaNet model can be cut too (traceNeedles needs OVQ; the accuracy does not).
    const cut = await needleAccuracy(gdn, batch, vocab, needleLength, { cutEcho: true });
    expect(cut).toHaveLength(3);
    gdn.dispose();
    const ovq = decoder('swa,ovq', 2);
    const traced = await traceNeedles(ovq, batch, vocab, needleLength, { cutEcho: true });
    const scored = await needleAccuracy(ovq, batch, vocab, needleLength, { cutEcho: true });
    expect(traced.filter((t) => t.head === 0).map((t) => t.correct)).toEqual(scored);
    ovq.dispose();
  });
});
