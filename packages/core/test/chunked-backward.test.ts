// Gradients of the chunked Float32 path (reverse scan with undo / √-checkpoints) against the
// float64 reference backward, and on a tiny case against central differences of the reference
// forward itself, so that a shared misreading of §5 would still be caught.
import { afterAll, describe, expect, it } from 'vitest';
import { ovqAttention, ovqAttentionBackward } from '../src/chunked/index.js';
import { ovqAttentionReferenceBackward } from '../src/ovq/backward.js';
import { ovqAttentionReference } from '../src/ovq/reference.js';
import type { OvqConfig, Seq } from '../src/ovq/types.js';
import {
  assertClose,
  centralDifferences,
  createRng,
  dot,
  poisoned,
  randn,
  randomSeq,
} from '../src/testing/index.js';
import { OPTION_CASES, replayStats, TOL } from './chunked-support.js';

afterAll(() => {
  const { compared, replayed, flippedAbsorbs, absorbs } = replayStats;
  console.log(
    `chunked backward vs reference: ${compared} runs, ${replayed} needed a replay (${flippedAbsorbs} of ${absorbs} absorbs had a flipped decision)`,
  );
});

/** Compares every gradient; the reference replays the chunked decisions only if they differ. */
function checkGradients(seq: Seq, config: OvqConfig, seed: number): void {
  const T = seq.seqLen;
  const dOutput = randn(createRng(seed), T * seq.valueDim);
  const out = {
    dq: poisoned(T * seq.keyDim),
    dk: poisoned(T * seq.keyDim),
    dv: poisoned(T * seq.valueDim),
  };
  const chunked = ovqAttentionBackward(seq, config, dOutput, { out });
  expect(chunked.dq).toBe(out.dq);
  const own = ovqAttentionReference(seq, config).trace;
  replayStats.compared++;
  replayStats.absorbs += own.length;
  const flipped = own.filter(
    (r, a) => JSON.stringify(r) !== JSON.stringify(chunked.trace[a]),
  ).length;
  if (flipped > 0) {
    replayStats.replayed++;
    replayStats.flippedAbsorbs += flipped;
  }
  const ref = ovqAttentionReferenceBackward(
    seq,
    config,
    dOutput,
    flipped > 0 ? { replay: chunked.trace } : {},
  );
  assertClose('dq', ref.dq, chunked.dq, TOL);
  assertClose('dk', ref.dk, chunked.dk, TOL);
  assertClose('dv', ref.dv, chunked.dv, TOL);
  assertClose('dbeta', [ref.dbeta], [chunked.dbeta], TOL);
  // The backward's own decision sweep must agree with the forward's.
  expect(chunked.trace).toEqual(ovqAttention(seq, config).trace);
}

describe('chunked backward = reference gradients', () => {
  for (const T of [1, 63, 500, 1000]) {
    for (const d of [8, 60, 64]) {
      for (const C of [1, 7, 64]) {
        it(`T${T}-d${d}-C${C}`, () => {
          const seq = randomSeq(T * 11 + d + C, T, d, d === 60 ? 20 : d);
          checkGradients(seq, { chunkSize: C, capacity: 40, beta: 4 }, T + d + C);
        });
      }
    }
  }
});

describe('chunked backward = reference for every option', () => {
  for (const [name, options] of OPTION_CASES) {
    for (const [T, d, C, N] of [
      [300, 12, 16, 24],
      [400, 7, 3, 30],
    ]) {
      it(`${name}-T${T}-d${d}-C${C}-N${N}`, () => {
        const seq = randomSeq(T * 2 + d, T, d, d + 2);
        checkGradients(seq, { chunkSize: C, capacity: N, beta: 3, ...options }, T + C);
      });
    }
  }
});

describe('chunked backward = central differences of the reference forward', () => {
  for (const [name, options] of OPTION_CASES.filter(([n]) =>
    ['default', 'gaussian', 'ema0.3', 'raw', 'novelty'].includes(n),
  )) {
    it(`${name}-T20-d4-C3`, () => {
      const seq = randomSeq(99, 20, 4, 3);
      const config = { chunkSize: 3, capacity: 5, beta: 2, ...options };
      const dOutput = randn(createRng(3), 20 * 3);
      const chunked = ovqAttentionBackward(seq, config, dOutput);
      // Decisions are constants (§5): freeze them so that x ± h cannot flip one.
      const replay = chunked.trace;
      const loss = () => dot(dOutput, ovqAttentionReference(seq, config, { replay }).output);
      for (const field of ['q', 'k', 'v'] as const) {
        const fd = centralDifferences(loss, seq[field] as Float64Array);
        assertClose(`d${field}`, fd, chunked[`d${field}`], 1e-5);
      }
      const base = config.beta;
      const h = 1e-6;
      const at = (beta: number) =>
        dot(dOutput, ovqAttentionReference(seq, { ...config, beta }, { replay }).output);
      assertClose('dbeta', [(at(base + h) - at(base - h)) / (2 * h)], [chunked.dbeta], 1e-5);
    });
  }
});

describe('chunked backward: input checks', () => {
  const seq = randomSeq(1, 10, 4, 3);
  const config = { chunkSize: 4, capacity: 8, beta: 1 };
  it('rejects a dOutput of the wrong size or with NaN', () => {
    expect(() => ovqAttentionBackward(seq, config, new Float32Array(29))).toThrow(
      /dOutput: has 29 values; expected seqLen\*valueDim = 30/,
    );
    expect(() => ovqAttentionBackward(seq, config, poisoned(30))).toThrow(
      /dOutput: value at index 0 is NaN/,
    );
  });
  it('rejects a wrong gradient buffer', () => {
    expect(() =>
      ovqAttentionBackward(seq, config, new Float32Array(30), {
        out: { dk: new Float32Array(3) },
      }),
    ).toThrow(/options.out.dk: has 3 values; expected seqLen\*keyDim = 40/);
  });
});
