import { describe, expect, it } from 'vitest';
import {
  createOvqState,
  deserializeOvqState,
  type OvqConfig,
  ovqAppend,
  ovqAttentionReference,
  ovqAttentionReferenceBackward,
  serializeOvqState,
} from '../src/index.js';
import { randomSeq } from '../src/testing/index.js';

const config: OvqConfig = { chunkSize: 4, capacity: 8, beta: 2 };
const seq = randomSeq(1, 10, 3, 2);

describe('bad input gets an error naming the argument and what was expected', () => {
  const cases: [string, () => unknown, RegExp][] = [
    [
      'q too short',
      () => ovqAttentionReference({ ...seq, q: seq.q.subarray(1) }, config),
      /seq\.q: has 29 values; expected seqLen\*keyDim = 30/,
    ],
    [
      'v too long',
      () => ovqAttentionReference({ ...seq, v: new Float64Array(21) }, config),
      /seq\.v: has 21 values; expected seqLen\*valueDim = 20/,
    ],
    [
      'NaN in k',
      () =>
        ovqAttentionReference(
          { ...seq, k: Object.assign(seq.k.slice(), { 4: Number.NaN }) },
          config,
        ),
      /seq\.k: value at index 4 is NaN/,
    ],
    [
      'Infinity in q',
      () =>
        ovqAttentionReference(
          { ...seq, q: Object.assign(seq.q.slice(), { 0: Number.POSITIVE_INFINITY }) },
          config,
        ),
      /seq\.q: value at index 0 is Infinity/,
    ],
    [
      'q not an array',
      () => ovqAttentionReference({ ...seq, q: 'x' as unknown as Float64Array }, config),
      /seq\.q: got string/,
    ],
    [
      'seqLen fractional',
      () => ovqAttentionReference({ ...seq, seqLen: 2.5 }, config),
      /seq\.seqLen: got 2\.5; expected a non-negative integer/,
    ],
    [
      'keyDim 0',
      () => ovqAttentionReference({ ...seq, keyDim: 0 }, config),
      /seq\.keyDim: got 0; expected a positive integer/,
    ],
    [
      'chunkSize 0',
      () => ovqAttentionReference(seq, { ...config, chunkSize: 0 }),
      /config\.chunkSize: got 0; expected a positive integer/,
    ],
    [
      'chunkSize 1.5',
      () => ovqAttentionReference(seq, { ...config, chunkSize: 1.5 }),
      /config\.chunkSize: got 1\.5/,
    ],
    [
      'capacity -1',
      () => ovqAttentionReference(seq, { ...config, capacity: -1 }),
      /config\.capacity: got -1; expected a positive integer/,
    ],
    [
      'beta 0',
      () => ovqAttentionReference(seq, { ...config, beta: 0 }),
      /config\.beta: got 0; expected a finite number > 0/,
    ],
    [
      'beta NaN',
      () => ovqAttentionReference(seq, { ...config, beta: Number.NaN }),
      /config\.beta: got NaN/,
    ],
    [
      'unknown option',
      () => ovqAttentionReference(seq, { ...config, windw: 3 } as OvqConfig),
      /config\.windw: unknown option/,
    ],
    [
      'unknown growth',
      () => ovqAttentionReference(seq, { ...config, growth: 'cubic' as 'full' }),
      /config\.growth: got "cubic"/,
    ],
    [
      'growth missing param',
      () =>
        ovqAttentionReference(seq, { ...config, growth: { kind: 'log' } as OvqConfig['growth'] }),
      /config\.growth\.alpha: got undefined/,
    ],
    [
      'unknown spawn',
      () => ovqAttentionReference(seq, { ...config, spawn: 'kmeans' as 'first' }),
      /config\.spawn: got "kmeans"/,
    ],
    [
      'unknown read',
      () => ovqAttentionReference(seq, { ...config, read: 'cosine' as 'dot' }),
      /config\.read: got "cosine"/,
    ],
    [
      'ema rate 0',
      () => ovqAttentionReference(seq, { ...config, update: { kind: 'ema', rate: 0 } }),
      /config\.update\.rate: got 0; expected 0 < rate ≤ 1/,
    ],
    [
      'normalize string',
      () => ovqAttentionReference(seq, { ...config, normalize: 'yes' as unknown as boolean }),
      /config\.normalize/,
    ],
    [
      'dOutput length',
      () => ovqAttentionReferenceBackward(seq, config, new Float64Array(3)),
      /dOutput: has 3 values; expected seqLen\*valueDim = 20/,
    ],
    ['dims', () => createOvqState({ keyDim: 3, valueDim: -2 }, config), /dims\.valueDim: got -2/],
  ];
  for (const [name, call, message] of cases) {
    it(name, () => {
      expect(call).toThrow(message);
    });
  }
});

describe('a rejected append leaves the state unchanged', () => {
  function started() {
    const state = createOvqState({ keyDim: 3, valueDim: 2 }, config);
    ovqAppend(state, {
      q: seq.q.subarray(0, 18),
      k: seq.k.subarray(0, 18),
      v: seq.v.subarray(0, 12),
      seqLen: 6,
    });
    return state;
  }
  const rejects: [string, Parameters<typeof ovqAppend>[1], RegExp][] = [
    [
      'k length',
      { q: seq.q.subarray(0, 6), k: seq.k.subarray(0, 5), v: seq.v.subarray(0, 4), seqLen: 2 },
      /seq\.k: has 5 values/,
    ],
    [
      'NaN in v (last value)',
      {
        q: seq.q.subarray(0, 6),
        k: seq.k.subarray(0, 6),
        v: new Float64Array([1, 2, 3, Number.NaN]),
        seqLen: 2,
      },
      /seq\.v: value at index 3 is NaN/,
    ],
    [
      'keyDim mismatch',
      {
        q: seq.q.subarray(0, 8),
        k: seq.k.subarray(0, 8),
        v: seq.v.subarray(0, 4),
        seqLen: 2,
        keyDim: 4,
      } as Parameters<typeof ovqAppend>[1],
      /seq\.keyDim: got 4; the state was created with keyDim 3/,
    ],
  ];
  for (const [name, piece, message] of rejects) {
    it(name, () => {
      const state = started();
      const before = serializeOvqState(state);
      expect(() => ovqAppend(state, piece)).toThrow(message);
      expect(serializeOvqState(state)).toEqual(before);
    });
  }

  it('a bad replay record mid-stream leaves a state untouched (reference entry)', () => {
    const { trace } = ovqAttentionReference(seq, config);
    const broken = trace.map((r) => ({ ...r, assignment: r.assignment.map(() => 99) }));
    expect(() => ovqAttentionReference(seq, config, { replay: broken })).toThrow(
      /options\.replay: token \d is assigned to row 99/,
    );
  });

  it('a non-state is rejected', () => {
    expect(() => ovqAppend({} as never, { q: [], k: [], v: [], seqLen: 0 } as never)).toThrow(
      /state: expected an OvqState/,
    );
  });
});

describe('deserialization validates format, version and the expected stream', () => {
  const state = createOvqState({ keyDim: 3, valueDim: 2 }, config);
  ovqAppend(state, { q: seq.q, k: seq.k, v: seq.v, seqLen: 10 });
  const bytes = serializeOvqState(state);

  it('round trip', () => {
    expect(serializeOvqState(deserializeOvqState(bytes))).toEqual(bytes);
  });
  it('wrong magic', () => {
    const bad = bytes.slice();
    bad[0] = 0;
    expect(() => deserializeOvqState(bad)).toThrow(/bytes: does not start with "OVQS"/);
  });
  it('future version', () => {
    const bad = bytes.slice();
    new DataView(bad.buffer).setUint32(4, 2, true);
    expect(() => deserializeOvqState(bad)).toThrow(
      /bytes: format version 2; this build reads version 1/,
    );
  });
  it('truncated', () => {
    expect(() => deserializeOvqState(bytes.subarray(0, bytes.length - 8))).toThrow(
      /bytes: has \d+ bytes; expected \d+/,
    );
  });
  it('NaN in payload', () => {
    const bad = bytes.slice();
    new DataView(bad.buffer).setFloat64(bad.length - 8, Number.NaN, true);
    expect(() => deserializeOvqState(bad)).toThrow(/non-finite value/);
  });
  it('keyDim mismatch', () => {
    expect(() => deserializeOvqState(bytes, { keyDim: 4 })).toThrow(
      /expected\.keyDim: state has keyDim 3; expected 4/,
    );
  });
  it('config mismatch', () => {
    expect(() => deserializeOvqState(bytes, { config: { ...config, chunkSize: 8 } })).toThrow(
      /expected\.config\.chunkSize: state has 4; expected 8/,
    );
  });
  it('capacity may differ (test-time budget)', () => {
    expect(deserializeOvqState(bytes, { config: { ...config, capacity: 2 } }).size).toBe(
      state.size,
    );
  });
});
