// evaluate's per-position loss against a float64 reference computed on the host from the full
// logits of the very batches evaluate sampled: every position (byte-LM) and scored ones only (MQAR).
import '@tensorflow/tfjs';
import { assertClose } from '@ovq/core/testing';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  batchInputs,
  byteLmTask,
  createTfjsMixer,
  Decoder,
  evaluate,
  mqarTask,
  type Task,
} from '../src/index.js';
import { IGNORE, type TokenBatch } from '../src/tasks/types.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function model(vocabSize: number) {
  const m = new Decoder(
    {
      vocabSize,
      dModel: 16,
      heads: 2,
      layers: 2,
      mixers: 'swa,ovq',
      mixerOptions: { window: 8, ovqCapacity: 8, ovqChunkSize: 8 },
      seed: 3,
    },
    createTfjsMixer,
  );
  m.build();
  return m;
}

/** `task` that records every batch it hands out. */
function recording(task: Task<TokenBatch>) {
  const seen: TokenBatch[] = [];
  return {
    seen,
    task: {
      ...task,
      sample: (b: number, T: number, s: number) => {
        const batch = task.sample(b, T, s);
        seen.push(batch);
        return batch;
      },
    },
  };
}

/** Float64 cross-entropy per position, averaged over the scored entries of `batches`. */
function reference(m: Decoder, batches: TokenBatch[]) {
  const T = batches[0].seqLen;
  const V = batches[0].vocabSize;
  const sum = new Float64Array(T);
  const count = new Float64Array(T);
  let mean = 0;
  for (const batch of batches) {
    const logits = tf.tidy(() => m.forward(batchInputs(batch))).dataSync();
    let s = 0;
    let n = 0;
    batch.targets.forEach((target, p) => {
      if (target === IGNORE) return;
      const row = Float64Array.from(logits.subarray(p * V, (p + 1) * V));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, x) => a + Math.exp(x - max), 0));
      const ce = lse - row[target];
      sum[p % T] += ce;
      count[p % T]++;
      s += ce;
      n++;
    });
    mean += s / n / batches.length;
  }
  return {
    byPosition: Array.from(sum, (x, t) => (count[t] > 0 ? x / count[t] : Number.NaN)),
    mean,
  };
}

const docs = [
  {
    name: 'a',
    bytes: new TextEncoder().encode('the quick brown fox jumps over the lazy dog. '.repeat(20)),
  },
  {
    name: 'b',
    bytes: new TextEncoder().encode('pack my box with five dozen liquor jugs! '.repeat(20)),
  },
];

describe('evaluate: loss by position', () => {
  it('byte-LM: every position, against float64, and the same mean loss and accuracy as without', async () => {
    const m = model(256);
    try {
      const { seen, task } = recording(byteLmTask(docs, 'toy'));
      const r = await evaluate(m, task, 24, 2, 3, 0, { lossByPosition: true });
      const ref = reference(m, seen);
      expect(r.lossByPosition).toHaveLength(24);
      assertClose('loss by position', ref.byPosition, r.lossByPosition!, 1e-5);
      expect(r.loss).toBeCloseTo(ref.mean, 5);
      const plain = await evaluate(m, task, 24, 2, 3, 0);
      expect(plain.lossByPosition).toBeUndefined();
      expect(r.loss).toBeCloseTo(plain.loss, 5);
      expect(r.metric).toBe(plain.metric);
      expect(r.byPosition).toEqual(plain.byPosition);
    } finally {
      m.dispose();
    }
  });

  it('MQAR: positions never scored are NaN, scored ones match float64', async () => {
    const m = model(64);
    try {
      const { seen, task } = recording(mqarTask({ vocabSize: 64, numPairs: 4 }));
      const r = await evaluate(m, task, 32, 2, 4, 0, { lossByPosition: true });
      const ref = reference(m, seen);
      const scored = ref.byPosition.flatMap((x, t) => (Number.isNaN(x) ? [] : [t]));
      expect(scored.length).toBeGreaterThan(0);
      expect(scored.length).toBeLessThan(32);
      for (let t = 0; t < 32; t++)
        expect(Number.isNaN(r.lossByPosition![t])).toBe(Number.isNaN(ref.byPosition[t]));
      assertClose(
        'scored positions',
        scored.map((t) => ref.byPosition[t]),
        scored.map((t) => r.lossByPosition![t]),
        1e-5,
      );
      expect(r.loss).toBeCloseTo(ref.mean, 5);
      // The scored-head path (modelLoss) gives the same mean loss.
      expect((await evaluate(m, task, 32, 2, 4, 0)).loss).toBeCloseTo(r.loss, 5);
    } finally {
      m.dispose();
    }
  });
});
