// The chunked Float32 forward against the float64 reference: outputs and final state over odd
// shapes and every option, plus the invariants of ALGORITHM.md §4 on the chunked path itself.
import { afterAll, describe, expect, it } from 'vitest';
import { ovqAttention } from '../src/chunked/index.js';
import { ovqAppend, ovqAttentionReference } from '../src/ovq/reference.js';
import { serializeOvqState } from '../src/ovq/serialize.js';
import { createOvqState, setOvqCapacity } from '../src/ovq/state.js';
import { assertClose, createRng, poisoned, randomSeq } from '../src/testing/index.js';
import { OvqInputError } from '../src/validate.js';
import {
  causalSoftmax,
  expectSameState,
  OPTION_CASES,
  randomCuts,
  referenceFor,
  replayStats,
  sliceSeq,
  TOL,
} from './chunked-support.js';

afterAll(() => {
  const { compared, replayed, absorbs, flippedAbsorbs } = replayStats;
  console.log(
    `chunked forward vs reference: ${compared} runs, ${replayed} needed a replay (${flippedAbsorbs} of ${absorbs} absorbs had a flipped decision)`,
  );
});

describe('chunked forward = reference (outputs and final state)', () => {
  for (const T of [1, 63, 500, 1000]) {
    for (const d of [8, 60, 64]) {
      for (const C of [1, 7, 64]) {
        it(`T${T}-d${d}-C${C}`, () => {
          const seq = randomSeq(T * 7 + d * 3 + C, T, d, d === 60 ? 12 : d);
          const config = { chunkSize: C, capacity: 40, beta: 4 };
          const chunked = ovqAttention(seq, config, { out: poisoned(T * seq.valueDim) });
          const ref = referenceFor(seq, config, chunked.trace);
          assertClose('output', ref.output, chunked.output, TOL);
          expectSameState('state', ref.state, chunked.state);
        });
      }
    }
  }
});

describe('chunked forward = reference for every option', () => {
  for (const [name, options] of OPTION_CASES) {
    for (const [T, d, C, N] of [
      [300, 12, 16, 24],
      [250, 7, 1, 30],
    ]) {
      it(`${name}-T${T}-d${d}-C${C}-N${N}`, () => {
        const seq = randomSeq(T + d + C, T, d, d + 3);
        const config = { chunkSize: C, capacity: N, beta: 3, ...options };
        const chunked = ovqAttention(seq, config, { out: poisoned(T * seq.valueDim) });
        const ref = referenceFor(seq, config, chunked.trace);
        assertClose('output', ref.output, chunked.output, TOL);
        expectSameState('state', ref.state, chunked.state);
      });
    }
  }
});

describe('chunked: exact ties (repeated keys) go to the lowest row, as in the reference', () => {
  // Dyadic keys without normalisation keep every sum and mean exact in float32 and float64, so the
  // ties are real on both sides (with normalised keys the reference's own rounding breaks them).
  for (const [name, options] of OPTION_CASES.filter(([n]) =>
    ['default', 'first', 'random', 'gaussian'].includes(n),
  )) {
    it(`${name}-T120-d6-C8`, () => {
      const T = 120;
      const d = 6;
      const rng = createRng(9);
      const bases = Array.from({ length: 5 }, () =>
        Array.from({ length: d }, () => Math.floor(rng() * 5) / 2 - 1),
      );
      const seq = randomSeq(10, T, d, d);
      for (let t = 0; t < T; t++) seq.k.set(bases[Math.floor(rng() * 5)], t * d);
      const config = { chunkSize: 8, capacity: 12, beta: 2, normalize: false, ...options };
      const chunked = ovqAttention(seq, config);
      const ref = ovqAttentionReference(seq, config);
      expect(chunked.state.size).toBeGreaterThan(5); // duplicate rows exist, so ties do occur
      expect(chunked.trace).toEqual(ref.trace);
      assertClose('output', ref.output, chunked.output, TOL);
      expectSameState('state', ref.state, chunked.state);
    });
  }
});

describe("chunked: repeated normalised tokens (the reference's float64 rounding breaks ties)", () => {
  it('T200-d8-C8: equals the reference, replaying the chunked decisions where they differ', () => {
    const T = 200;
    const d = 8;
    const rng = createRng(21);
    const bases = randomSeq(22, 4, d, d);
    const seq = randomSeq(23, T, d, d);
    for (let t = 0; t < T; t++) {
      const b = Math.floor(rng() * 4);
      seq.k.set(bases.k.subarray(b * d, (b + 1) * d), t * d);
    }
    const config = { chunkSize: 8, capacity: 10, beta: 2 };
    const chunked = ovqAttention(seq, config);
    const ref = referenceFor(seq, config, chunked.trace);
    assertClose('output', ref.output, chunked.output, TOL);
    expectSameState('state', ref.state, chunked.state);
  });
});

describe('chunked: growth full with capacity ≥ T is causal softmax attention', () => {
  for (const [T, d, C] of [
    [1, 8, 1],
    [63, 8, 7],
    [100, 60, 64],
    [130, 64, 1],
  ]) {
    it(`T${T}-d${d}-C${C}`, () => {
      const seq = randomSeq(T + 5 * d, T, d, d);
      const beta = 3;
      const { output, state } = ovqAttention(seq, {
        chunkSize: C,
        capacity: T,
        beta,
        growth: 'full',
      });
      assertClose('output', causalSoftmax(seq, beta), output, TOL);
      expect(Array.from(state.counts).every((c) => c === 1)).toBe(true);
    });
  }
});

describe('chunked: streaming in random splits = one call', () => {
  for (const [name, options] of OPTION_CASES.filter(([n]) =>
    ['default', 'ema0.3', 'random', 'gaussian'].includes(n),
  )) {
    for (const [T, d, C] of [
      [200, 8, 7],
      [300, 16, 64],
    ]) {
      it(`${name}-T${T}-d${d}-C${C}`, () => {
        const seq = randomSeq(T * 3 + C, T, d, d);
        const config = { chunkSize: C, capacity: 20, beta: 4, ...options };
        const whole = ovqAttention(seq, config);
        const rng = createRng(T + C);
        for (let trial = 0; trial < 3; trial++) {
          const cuts = randomCuts(rng, T, 2 + trial * 2);
          let state = createOvqState({ keyDim: d, valueDim: d }, config);
          const pieces = new Float32Array(T * d);
          for (let p = 0; p + 1 < cuts.length; p++) {
            const r = ovqAttention(sliceSeq(seq, cuts[p], cuts[p + 1]), config, { state });
            pieces.set(r.output, cuts[p] * d);
            state = r.state;
          }
          assertClose(`output (cuts ${cuts})`, whole.output, pieces, 1e-6);
          expectSameState(`state (cuts ${cuts})`, whole.state, state, 1e-6);
        }
      });
    }
  }

  it('continues a reference state, and the reference continues a chunked state (ovqAppend)', () => {
    const T = 230;
    const seq = randomSeq(42, T, 10, 6);
    const config = { chunkSize: 9, capacity: 16, beta: 3 };
    const ref = ovqAttentionReference(seq, config);
    const head = ovqAttentionReference(sliceSeq(seq, 0, 100), config);
    const tail = ovqAttention(sliceSeq(seq, 100, T), config, { state: head.state });
    assertClose('chunked after reference', ref.output.subarray(100 * 6), tail.output, TOL);
    expectSameState('state', ref.state, tail.state);
    const chunkedHead = ovqAttention(sliceSeq(seq, 0, 100), config);
    const rest = ovqAppend(chunkedHead.state, sliceSeq(seq, 100, T));
    assertClose('reference after chunked', ref.output.subarray(100 * 6), rest, TOL);
    expectSameState('appended state', ref.state, chunkedHead.state);
  });

  it('leaves options.state untouched and handles empty pieces (T0)', () => {
    const seq = randomSeq(6, 30, 5, 4);
    const config = { chunkSize: 4, capacity: 6, beta: 2 };
    const first = ovqAttention(sliceSeq(seq, 0, 13), config);
    const snapshot = serializeOvqState(first.state);
    const empty = ovqAttention(sliceSeq(seq, 13, 13), config, { state: first.state });
    expect(empty.output.length).toBe(0);
    expectSameState('empty piece', first.state, empty.state, 0);
    ovqAttention(sliceSeq(seq, 13, 30), config, { state: first.state });
    expect(serializeOvqState(first.state)).toEqual(snapshot);
  });

  it('honours a capacity lowered between calls (rows kept, spawning stops)', () => {
    const T = 200;
    const seq = randomSeq(5, T, 8, 8);
    const config = { chunkSize: 8, capacity: 32, beta: 3 };
    const first = ovqAttention(sliceSeq(seq, 0, 120), config);
    const lowered = { ...config, capacity: 4 };
    const second = ovqAttention(sliceSeq(seq, 120, T), lowered, { state: first.state });
    const refState = ovqAttentionReference(sliceSeq(seq, 0, 120), config).state;
    setOvqCapacity(refState, 4);
    const refOut = ovqAppend(refState, sliceSeq(seq, 120, T));
    expect(second.state.size).toBe(first.state.size);
    assertClose('output', refOut, second.output, TOL);
    expectSameState('state', refState, second.state);
  });
});

describe('chunked: causality', () => {
  for (const [T, C] of [
    [50, 7],
    [70, 64],
  ]) {
    it(`T${T}-C${C}: output t ignores inputs after t and depends on input t`, () => {
      const d = 6;
      const seq = randomSeq(T, T, d, d);
      const config = { chunkSize: C, capacity: 8, beta: 3 };
      const base = ovqAttention(seq, config).output;
      for (const t of [0, 3, Math.floor(T / 2), T - 1]) {
        for (const field of ['q', 'k', 'v'] as const) {
          const changed = { ...seq, [field]: seq[field].slice() };
          for (let i = t * d; i < (t + 1) * d; i++) changed[field][i] += 0.5;
          const out = ovqAttention(changed, config).output;
          expect(Array.from(out.subarray(0, t * d))).toEqual(Array.from(base.subarray(0, t * d)));
          // v_t always moves y_t; q_t and k_t do not at t = 0 (its only component is itself).
          if (field === 'v' || t > 0) {
            expect(out.subarray(t * d, (t + 1) * d)).not.toEqual(base.subarray(t * d, (t + 1) * d));
          }
        }
      }
    });
  }
});

describe('chunked: input checks name the argument', () => {
  const seq = randomSeq(1, 10, 4, 3);
  const config = { chunkSize: 4, capacity: 8, beta: 1 };
  it('rejects a wrong output buffer', () => {
    expect(() => ovqAttention(seq, config, { out: new Float32Array(29) })).toThrow(
      /options.out: has 29 values; expected seqLen\*valueDim = 30/,
    );
    expect(() =>
      ovqAttention(seq, config, { out: new Float64Array(30) as unknown as Float32Array }),
    ).toThrow(OvqInputError);
  });
  it('rejects a state of other dims or config', () => {
    const other = createOvqState({ keyDim: 5, valueDim: 3 }, config);
    expect(() => ovqAttention(seq, config, { state: other })).toThrow(
      /options.state: has keyDim 5/,
    );
    const state = createOvqState({ keyDim: 4, valueDim: 3 }, config);
    expect(() => ovqAttention(seq, { ...config, beta: 2 }, { state })).toThrow(
      /config.beta: got 2; options.state was created with 1/,
    );
    expect(() => ovqAttention(seq, config, { state: {} as never })).toThrow(
      /options.state: expected an OvqState/,
    );
  });
  it('rejects a bad sequence or config through core validation', () => {
    expect(() => ovqAttention({ ...seq, seqLen: 11 }, config)).toThrow(
      /seq.q: has 40 values; expected seqLen\*keyDim = 44/,
    );
    expect(() => ovqAttention(seq, { ...config, chunkSize: 0 })).toThrow(/config.chunkSize/);
  });
});
