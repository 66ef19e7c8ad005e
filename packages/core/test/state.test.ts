// OvqState is a read-only view: getters return copies, counters cannot be assigned, the config is
// frozen, and the mutating storage is not reachable from the package's exports. States can be
// built from arrays (validated), and β / capacity change only through the package's functions.
import { describe, expect, it } from 'vitest';
import { ovqAttention } from '../src/chunked/index.js';
import * as core from '../src/index.js';
import { ovqAppend } from '../src/ovq/reference.js';
import { serializeOvqState } from '../src/ovq/serialize.js';
import { createOvqState, type OvqState, setOvqBeta, setOvqCapacity } from '../src/ovq/state.js';
import { randomSeq } from '../src/testing/index.js';
import { OvqInputError } from '../src/validate.js';

const config = { chunkSize: 4, capacity: 6, beta: 2 };
const seq = randomSeq(1, 30, 3, 2);
const made = () => ovqAttention(seq, config).state;

describe('read-only view', () => {
  it('array getters return copies: writing them leaves the state unchanged', () => {
    const state = made();
    const before = serializeOvqState(state);
    expect(state.pendingCount).toBe(2);
    for (const name of [
      'counts',
      'centroidKeys',
      'centroidValues',
      'pendingKeys',
      'pendingValues',
    ] as const) {
      const a = state[name];
      expect(a.length).toBeGreaterThan(0);
      a.fill(123);
      expect(state[name]).not.toBe(a);
    }
    expect(state.pendingKeys.length).toBe(2 * 3);
    expect(serializeOvqState(state)).toEqual(before);
  });

  it('counters and dims cannot be assigned; the config is frozen', () => {
    const state = made() as unknown as Record<string, unknown>;
    for (const name of [
      'size',
      'tokensSeen',
      'pendingCount',
      'rngState',
      'keyDim',
      'valueDim',
      'config',
      'counts',
    ]) {
      expect(() => {
        state[name] = 1;
      }, name).toThrow(TypeError);
    }
    const cfg = (state as unknown as OvqState).config;
    expect(Object.isFrozen(cfg) && Object.isFrozen(cfg.growth) && Object.isFrozen(cfg.update)).toBe(
      true,
    );
    expect(() => {
      (cfg as { beta: number }).beta = 5;
    }).toThrow(TypeError);
  });

  it('no mutating method or storage is reachable through the exports', () => {
    const state = made() as unknown as Record<string, unknown>;
    for (const name of ['pushRow', 'assign', 'reserve']) expect(state[name], name).toBeUndefined();
    expect(Object.keys(state).some((k) => /storage/i.test(k))).toBe(false);
    expect(Object.keys(core)).not.toContain('STORAGE');
    expect(Object.keys(core)).not.toContain('OvqStateStorage');
  });

  it('clone is independent; ovqAppend and setOvqCapacity / setOvqBeta change the state', () => {
    const state = createOvqState({ keyDim: 3, valueDim: 2 }, config);
    const copy = state.clone();
    ovqAppend(state, {
      q: seq.q.subarray(0, 15),
      k: seq.k.subarray(0, 15),
      v: seq.v.subarray(0, 10),
      seqLen: 5,
    });
    expect(state.tokensSeen).toBe(5);
    expect(copy.tokensSeen).toBe(0);
    setOvqCapacity(state, 3);
    setOvqBeta(state, 0.5);
    expect([state.config.capacity, state.config.beta]).toEqual([3, 0.5]);
    expect(() => setOvqBeta(state, 0)).toThrow(/^beta: got 0; expected a finite number > 0/);
    expect(() => setOvqBeta({} as OvqState, 1)).toThrow(/^state: expected an OvqState/);
  });
});

describe('createOvqState(dims, config, contents)', () => {
  const state = made();
  const contents = {
    counts: state.counts,
    centroidKeys: state.centroidKeys,
    centroidValues: state.centroidValues,
    pendingKeys: state.pendingKeys,
    pendingValues: state.pendingValues,
    tokensSeen: state.tokensSeen,
    rngState: state.rngState,
  };
  it('rebuilds a state exactly, from Float32 or Float64 arrays', () => {
    expect(serializeOvqState(createOvqState(state, config, contents))).toEqual(
      serializeOvqState(state),
    );
    const f32 = { ...contents, counts: Float32Array.from(contents.counts) };
    expect(createOvqState(state, config, f32).size).toBe(state.size);
  });
  const bad: [string, Partial<typeof contents>, RegExp][] = [
    [
      'short keys',
      { centroidKeys: contents.centroidKeys.subarray(1) },
      /^contents\.centroidKeys: has/,
    ],
    [
      'a NaN value',
      { centroidValues: contents.centroidValues.map((x, i) => (i === 1 ? Number.NaN : x)) },
      /^contents\.centroidValues: value at index 1 is NaN/,
    ],
    [
      'a count of 0',
      { counts: contents.counts.map((c, i) => (i === 0 ? 0 : c)) },
      /^contents\.counts: counts\[0\] is 0/,
    ],
    [
      'counts off the absorbed tokens',
      { tokensSeen: contents.tokensSeen + 1 },
      /^contents\.counts: sum to 28; .* 29 tokens were absorbed/,
    ],
    [
      'pending keys and values disagree',
      { pendingValues: contents.pendingValues.subarray(2) },
      /^contents\.pendingValues: has 2 values; expected pendingCount\*valueDim = 4/,
    ],
    [
      'a full pending buffer',
      { pendingKeys: new Float64Array(12), pendingValues: new Float64Array(8), tokensSeen: 32 },
      /^contents\.pendingKeys: holds 4 tokens; expected < chunkSize 4/,
    ],
    ['rngState out of range', { rngState: -1 }, /^contents\.rngState: got -1/],
  ];
  for (const [name, change, message] of bad) {
    it(name, () => {
      expect(() => createOvqState(state, config, { ...contents, ...change })).toThrow(
        OvqInputError,
      );
      expect(() => createOvqState(state, config, { ...contents, ...change })).toThrow(message);
    });
  }
});
