import { describe, expect, it } from 'vitest';
import {
  type OvqConfig,
  ovqAttentionReference,
  ovqAttentionReferenceBackward,
} from '../src/index.js';
import {
  assertClose,
  centralDifferences,
  createRng,
  dot,
  randn,
  randomSeq,
} from '../src/testing/index.js';

// Small cases where merges, spawns and pending reads all occur: T=17, C=3, capacity 4.
const CASES: [string, Partial<OvqConfig>][] = [
  ['dot-mean-saturating', {}],
  ['gaussian', { read: 'gaussian' }],
  ['ema', { update: { kind: 'ema', rate: 0.4 } }],
  ['gaussian-ema', { read: 'gaussian', update: { kind: 'ema', rate: 0.25 } }],
  ['first', { spawn: 'first' }],
  ['random', { spawn: 'random', seed: 5 }],
  ['log', { growth: { kind: 'log', alpha: 2 } }],
  ['sqrt', { growth: { kind: 'sqrt', scale: 1 } }],
  ['linear', { growth: { kind: 'linear', rate: 0.3 } }],
  ['fixed', { growth: 'fixed' }],
  ['full', { growth: 'full', capacity: 17 }],
  ['unnormalized', { normalize: false, beta: 0.7 }],
  ['unnormalized-gaussian', { normalize: false, beta: 0.7, read: 'gaussian' }],
];

describe('reference gradients against float64 central differences', () => {
  for (const [name, extra] of CASES) {
    it(`T17-d4-C3-${name}`, () => {
      const config: OvqConfig = { chunkSize: 3, capacity: 4, beta: 2.5, ...extra };
      const seq = randomSeq(name.length * 31, 17, 4, 3);
      const dOut = randn(createRng(99), 17 * 3);
      const { trace } = ovqAttentionReference(seq, config);
      // The loss with the discrete decisions held fixed (ALGORITHM.md §5).
      const loss = (c: OvqConfig = config) =>
        dot(dOut, ovqAttentionReference(seq, c, { replay: trace }).output);
      const grads = ovqAttentionReferenceBackward(seq, config, dOut);
      expect(grads.trace).toEqual(trace);
      assertClose(
        'dq',
        centralDifferences(() => loss(), seq.q),
        grads.dq,
        1e-7,
      );
      assertClose(
        'dk',
        centralDifferences(() => loss(), seq.k),
        grads.dk,
        1e-7,
      );
      assertClose(
        'dv',
        centralDifferences(() => loss(), seq.v),
        grads.dv,
        1e-7,
      );
      const h = 1e-6;
      const dbeta =
        (loss({ ...config, beta: config.beta + h }) - loss({ ...config, beta: config.beta - h })) /
        (2 * h);
      assertClose('dbeta', [dbeta], [grads.dbeta], 1e-7);
      // Gradient through later reads of a centroid must be present: dk of absorbed tokens is non-zero.
      expect(Math.hypot(...grads.dk.subarray(0, 4))).toBeGreaterThan(0);
    });
  }

  it('a key merged into a row receives gradient from later reads of that row', () => {
    // Token 0 is absorbed at the first chunk end; tokens 2.. only see it through its row.
    const config: OvqConfig = { chunkSize: 2, capacity: 1, beta: 1, growth: 'fixed' };
    const seq = randomSeq(4, 6, 3, 2);
    const dOut = new Float64Array(12);
    dOut.fill(1, 4); // loss on tokens 2..5 only
    const grads = ovqAttentionReferenceBackward(seq, config, dOut);
    expect(Math.hypot(...grads.dv.subarray(0, 2))).toBeGreaterThan(0);
    expect(Math.hypot(...grads.dk.subarray(0, 3))).toBeGreaterThan(0);
  });
});
