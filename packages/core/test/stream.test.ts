// The decode stream against the one-call fast path: every split (token by token, random pieces,
// across chunk boundaries, mixed step/append) under every config option gives the same outputs
// and final state as `ovqAttention` on the whole sequence; resuming from a deserialized state;
// dictionary growth past the initial buffers; bad input leaves the stream untouched.
import { describe, expect, it } from 'vitest';
import { ovqAttention } from '../src/chunked/index.js';
import { deserializeOvqState, serializeOvqState } from '../src/ovq/serialize.js';
import type { OvqConfig, Seq } from '../src/ovq/types.js';
import { createOvqStream, type OvqStream } from '../src/stream/index.js';
import { assertClose, createRng, poisoned, randomSeq } from '../src/testing/index.js';
import { OvqInputError } from '../src/validate.js';
import { setOvqKernels } from '../src/wasm/simd.js';
import { expectSameState, OPTION_CASES, randomCuts, sliceSeq } from './chunked-support.js';

const STREAM_TOL = 1e-6;

/** Feeds seq[from, to) token by token with `step` into out (NaN-poisoned by the caller). */
function stepRange(stream: OvqStream, seq: Seq, from: number, to: number, out: Float32Array) {
  const { keyDim: dk, valueDim: dv } = seq;
  for (let t = from; t < to; t++) {
    const y = stream.step(
      seq.q.subarray(t * dk, (t + 1) * dk),
      seq.k.subarray(t * dk, (t + 1) * dk),
      seq.v.subarray(t * dv, (t + 1) * dv),
    );
    expect(y.length).toBe(dv);
    out.set(y, t * dv);
  }
}

function expectStreamMatches(
  seq: Seq,
  config: OvqConfig,
  feed: (s: OvqStream, out: Float32Array) => void,
) {
  const whole = ovqAttention(seq, config);
  const stream = createOvqStream(seq, config);
  const out = poisoned(seq.seqLen * seq.valueDim);
  feed(stream, out);
  assertClose('stream output', whole.output, out, STREAM_TOL);
  expectSameState('stream state', whole.state, stream.state, STREAM_TOL);
}

describe('stream = ovqAttention on the same tokens, every option', () => {
  for (const [name, options] of OPTION_CASES) {
    const T = 157;
    const config = { chunkSize: 8, capacity: 20, beta: 3, ...options };
    it(`${name}: token by token`, () => {
      const seq = randomSeq(11, T, 6, 5);
      expectStreamMatches(seq, config, (s, out) => stepRange(s, seq, 0, T, out));
    });
    it(`${name}: random pieces with append, some empty, some across several chunks`, () => {
      const seq = randomSeq(12, T, 6, 5);
      const rng = createRng(name.length * 31 + 5);
      const cuts = randomCuts(rng, T, 9);
      expectStreamMatches(seq, config, (s, out) => {
        for (let p = 0; p + 1 < cuts.length; p++) {
          const y = s.append(sliceSeq(seq, cuts[p], cuts[p + 1]));
          out.set(y, cuts[p] * seq.valueDim);
        }
      });
    });
  }

  it('mixed step and append, pieces ending exactly on and next to chunk boundaries', () => {
    const seq = randomSeq(13, 120, 8, 8);
    const config = { chunkSize: 7, capacity: 16, beta: 5 };
    const cuts = [0, 7, 13, 14, 15, 28, 29, 56, 57, 99, 120];
    expectStreamMatches(seq, config, (s, out) => {
      for (let p = 0; p + 1 < cuts.length; p++) {
        if (p % 2 === 0) stepRange(s, seq, cuts[p], cuts[p + 1], out);
        else out.set(s.append(sliceSeq(seq, cuts[p], cuts[p + 1])), cuts[p] * seq.valueDim);
      }
    });
  });

  it('chunk size 1 and a dictionary that outgrows the initial buffers (doubling)', () => {
    for (const config of [
      { chunkSize: 1, capacity: 50, beta: 2 },
      { chunkSize: 3, capacity: 400, beta: 2, growth: 'full' as const },
    ]) {
      const seq = randomSeq(14, 420, 4, 3);
      expectStreamMatches(seq, config, (s, out) => stepRange(s, seq, 0, seq.seqLen, out));
    }
  });

  it('step into a caller buffer writes every value and returns that buffer', () => {
    const seq = randomSeq(15, 40, 5, 4);
    const config = { chunkSize: 4, capacity: 8, beta: 2 };
    const whole = ovqAttention(seq, config);
    const stream = createOvqStream(seq, config);
    const y = poisoned(4);
    for (let t = 0; t < 40; t++) {
      y.fill(Number.NaN);
      const r = stream.step(
        seq.q.subarray(t * 5, t * 5 + 5),
        seq.k.subarray(t * 5, t * 5 + 5),
        seq.v.subarray(t * 4, t * 4 + 4),
        y,
      );
      expect(r).toBe(y);
      assertClose(`token ${t}`, whole.output.subarray(t * 4, t * 4 + 4), y, STREAM_TOL);
    }
  });
});

describe('both kernels: the resident WASM reader and the JS path', () => {
  const config = { chunkSize: 8, capacity: 20, beta: 3 };
  for (const kernels of ['wasm', 'js'] as const) {
    for (const [name, options] of OPTION_CASES.filter(([n]) =>
      ['default', 'gaussian', 'ema0.3', 'raw', 'novelty'].includes(n),
    )) {
      it(`${kernels}, ${name}: token by token, then pieces, then tokens`, () => {
        setOvqKernels(kernels);
        try {
          const seq = randomSeq(41, 150, 6, 5);
          const cfg = { ...config, ...options };
          const cuts = [0, 21, 30, 67, 150];
          expectStreamMatches(seq, cfg, (s, out) => {
            stepRange(s, seq, cuts[0], cuts[1], out);
            out.set(s.append(sliceSeq(seq, cuts[1], cuts[2])), cuts[1] * 5);
            stepRange(s, seq, cuts[2], cuts[3], out);
            out.set(s.append(sliceSeq(seq, cuts[3], cuts[3] + 4)), cuts[3] * 5);
            stepRange(s, seq, cuts[3] + 4, cuts[4], out);
          });
          const probe = createOvqStream({ keyDim: 6, valueDim: 5 }, cfg);
          probe.step(seq.q.subarray(0, 6), seq.k.subarray(0, 6), seq.v.subarray(0, 5));
          // White-box: the WASM setting really takes the resident reader, the JS one does not.
          expect((probe as unknown as { reader: unknown }).reader !== null).toBe(
            kernels === 'wasm',
          );
        } finally {
          setOvqKernels('auto');
        }
      });
    }
  }

  it('switching kernels mid-stream (and a regrow while on JS) keeps the results', () => {
    const seq = randomSeq(42, 300, 4, 3);
    const cfg = { chunkSize: 3, capacity: 200, beta: 2, growth: 'full' as const };
    try {
      expectStreamMatches(seq, cfg, (s, out) => {
        for (let piece = 0; piece < 6; piece++) {
          setOvqKernels(piece % 2 === 0 ? 'wasm' : 'js');
          stepRange(s, seq, piece * 50, (piece + 1) * 50, out);
        }
      });
    } finally {
      setOvqKernels('auto');
    }
  });
});

describe('resume from a deserialized state', () => {
  for (const [name, options] of OPTION_CASES) {
    it(name, () => {
      const seq = randomSeq(21, 130, 6, 4);
      const config = { chunkSize: 8, capacity: 20, beta: 3, ...options };
      for (const cut of [0, 45, 48, 129]) {
        const head = ovqAttention(sliceSeq(seq, 0, cut), config);
        const state = deserializeOvqState(serializeOvqState(head.state));
        const tail = sliceSeq(seq, cut, seq.seqLen);
        const expected = ovqAttention(tail, config, { state });
        const stream = createOvqStream(seq, config, { state });
        const out = poisoned(tail.seqLen * 4);
        stepRange(stream, tail, 0, tail.seqLen, out);
        assertClose(`cut ${cut}: output`, expected.output, out, STREAM_TOL);
        expectSameState(`cut ${cut}: state`, expected.state, stream.state, STREAM_TOL);
        // The given state is copied, never modified.
        expect(serializeOvqState(state)).toEqual(serializeOvqState(head.state));
      }
    });
  }

  it('a resumed stream may lower the capacity (only capacity may change)', () => {
    const seq = randomSeq(22, 100, 5, 5);
    const config = { chunkSize: 5, capacity: 30, beta: 2 };
    const head = ovqAttention(sliceSeq(seq, 0, 50), config);
    const lowered = { ...config, capacity: 4 };
    const expected = ovqAttention(sliceSeq(seq, 50, 100), lowered, { state: head.state });
    const stream = createOvqStream(seq, lowered, { state: head.state });
    const out = stream.append(sliceSeq(seq, 50, 100));
    assertClose('output', expected.output, out, STREAM_TOL);
    expectSameState('state', expected.state, stream.state, STREAM_TOL);
    expect(() => createOvqStream(seq, { ...config, beta: 3 }, { state: head.state })).toThrow(
      /config\.beta: got 3; options\.state was created with 2/,
    );
  });
});

describe('bad input: OvqInputError naming the argument, and the stream unchanged', () => {
  const dims = { keyDim: 3, valueDim: 2 };
  const config = { chunkSize: 4, capacity: 6, beta: 2 };
  const seq = randomSeq(31, 30, 3, 2);
  const good = () => {
    const s = createOvqStream(dims, config);
    s.append(sliceSeq(seq, 0, 11));
    return s;
  };
  const q = new Float32Array(3).fill(0.5);
  const v = new Float32Array(2).fill(1);

  const bad: [string, (s: OvqStream) => unknown, RegExp][] = [
    ['short q', (s) => s.step(new Float32Array(2), q, v), /^q: has 2 values; expected keyDim = 3/],
    ['long k', (s) => s.step(q, new Float32Array(4), v), /^k: has 4 values; expected keyDim = 3/],
    [
      'short v',
      (s) => s.step(q, q, new Float32Array(1)),
      /^v: has 1 values; expected valueDim = 2/,
    ],
    [
      'NaN in k',
      (s) => s.step(q, Float32Array.of(0, Number.NaN, 1), v),
      /^k: value at index 1 is NaN/,
    ],
    [
      '∞ in v',
      (s) => s.step(q, q, Float64Array.of(1, Number.POSITIVE_INFINITY)),
      /^v: value at index 1 is Infinity/,
    ],
    ['not an array', (s) => s.step(q, 'abc' as never, v), /^k: got string/],
    ['out of the wrong length', (s) => s.step(q, q, v, new Float32Array(3)), /^out: has 3 values/],
    [
      'append with a NaN late in the piece',
      (s) => {
        const piece = sliceSeq(seq, 11, 30);
        piece.v[35] = Number.NaN;
        return s.append(piece);
      },
      /^seq\.v: value at index 35 is NaN/,
    ],
    [
      'append with a wrong keyDim',
      (s) => s.append({ ...sliceSeq(seq, 11, 12), keyDim: 4 }),
      /^seq\.keyDim: got 4/,
    ],
    [
      'append with a bad seqLen',
      (s) => s.append({ ...sliceSeq(seq, 11, 12), seqLen: 1.5 }),
      /^seq\.seqLen: got 1\.5/,
    ],
    [
      'append with short arrays',
      (s) => s.append({ ...sliceSeq(seq, 11, 13), seqLen: 3 }),
      /^seq\.q: has 6 values; expected seqLen\*keyDim = 9/,
    ],
  ];
  for (const [name, call, message] of bad) {
    it(name, () => {
      const stream = good();
      const before = serializeOvqState(stream.state);
      let error: unknown;
      try {
        call(stream);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(OvqInputError);
      expect((error as Error).message).toMatch(message);
      expect(serializeOvqState(stream.state)).toEqual(before);
      // And it continues exactly like a stream that never saw the bad call.
      const reference = good();
      const rest = sliceSeq(seq, 11, 30);
      assertClose('continuation', reference.append(rest), stream.append(rest), 0);
    });
  }

  it('dims, config and options are checked at creation', () => {
    expect(() => createOvqStream({ keyDim: 0, valueDim: 2 }, config)).toThrow(
      /^dims\.keyDim: got 0/,
    );
    expect(() => createOvqStream(null as never, config)).toThrow(/^dims: got null/);
    expect(() => createOvqStream(dims, { ...config, beta: -1 })).toThrow(/^config\.beta/);
    expect(() => createOvqStream(dims, config, { stat: 1 } as never)).toThrow(/^options\.stat/);
    expect(() => createOvqStream(dims, config, { state: {} as never })).toThrow(
      /^options\.state: expected an OvqState/,
    );
    const state = good().state;
    expect(() => createOvqStream({ keyDim: 4, valueDim: 2 }, config, { state })).toThrow(
      /^dims\.keyDim: got 4; options\.state has keyDim 3/,
    );
    expect(() => createOvqStream({ keyDim: 3, valueDim: 5 }, config, { state })).toThrow(
      /^dims\.valueDim: got 5; options\.state has valueDim 2/,
    );
  });

  it('a disposed stream rejects every call', () => {
    const stream = good();
    stream.dispose();
    expect(() => stream.step(q, q, v)).toThrow(OvqInputError);
    expect(() => stream.step(q, q, v)).toThrow(/^stream: has been disposed/);
    expect(() => stream.append(sliceSeq(seq, 0, 1))).toThrow(/^stream: has been disposed/);
    expect(() => stream.state).toThrow(/^stream: has been disposed/);
  });
});
