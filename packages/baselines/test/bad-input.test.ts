// Every exported entry point, fed bad input the way a fuzzer would: each case must throw a
// BaselineInputError whose message names the offending argument; a failed append must leave the
// state as it was. The cases are generated per mixer from one valid call (see `mixers`).
import { describe, expect, it } from 'vitest';
import * as api from '../src/index.js';
import { BaselineInputError, MIXERS, type MixerName } from '../src/index.js';
import { randomSeq, uniform } from './helpers.js';

type Fn = (...args: never[]) => unknown;
const fn = (name: string): Fn => (api as unknown as Record<string, Fn>)[name];
const call = (name: string, ...args: unknown[]) =>
  (fn(name) as (...a: unknown[]) => unknown)(...args);

/** One bad-input case: calling `run` must throw a BaselineInputError naming `argument`. */
type Case = { label: string; run: () => unknown; argument: string; hint?: string };

/** Runs the cases; returns a description of every case that was not refused as required. */
function failures(cases: Case[]): string[] {
  const out: string[] = [];
  for (const c of cases) {
    try {
      c.run();
      out.push(`${c.label}: accepted`);
    } catch (e) {
      if (!(e instanceof BaselineInputError)) {
        out.push(`${c.label}: threw ${(e as Error)?.name}: ${(e as Error)?.message}`);
      } else if (!e.message.includes(c.argument) || !e.argument.includes(c.argument)) {
        out.push(`${c.label}: "${e.message}" does not name ${c.argument}`);
      } else if (c.hint && !e.message.includes(c.hint)) {
        out.push(`${c.label}: "${e.message}" lacks "${c.hint}"`);
      }
    }
  }
  return out;
}

const T = 6;
const dk = 4;
const dv = 3;
const S = 3; // VQ codebook rows

type ConfigKind = 'pos' | 'int1' | 'int0' | 'bool' | 'window' | 'rope' | 'budget';

type Mixer = {
  name: MixerName;
  /** Prefix of the exported names: `${prefix}Attention`, `create${Cap}State`… */
  reference: string;
  fast: string;
  append: string;
  create: string;
  serialize: string;
  deserialize: string;
  size: string;
  /** Extra per-token inputs, with bad values for each. */
  extras: Record<string, { make: () => Float64Array; bad: number[] }>;
  config: Record<string, unknown>;
  keys: Record<string, ConfigKind>;
  required: string[];
};

const wellFormed = (seed: number) => randomSeq(seed, T, dk, dv);

const mixers: Mixer[] = [
  {
    name: 'softmax',
    reference: 'softmaxAttention',
    fast: 'softmaxAttentionTiled',
    append: 'softmaxAppend',
    create: 'createSoftmaxState',
    serialize: 'serializeSoftmaxState',
    deserialize: 'deserializeSoftmaxState',
    size: 'softmaxStateSize',
    extras: {},
    config: { beta: 0.5, normalize: true, window: 3, rope: { base: 100 } },
    keys: { beta: 'pos', normalize: 'bool', window: 'window', rope: 'rope' },
    required: [],
  },
  {
    name: 'linear',
    reference: 'linearAttention',
    fast: 'linearAttentionChunked',
    append: 'linearAppend',
    create: 'createLinearState',
    serialize: 'serializeLinearState',
    deserialize: 'deserializeLinearState',
    size: 'linearStateSize',
    extras: {},
    config: { eps: 1e-3 },
    keys: { eps: 'pos' },
    required: [],
  },
  {
    name: 'decay-linear',
    reference: 'decayLinearAttention',
    fast: 'decayLinearAttentionChunked',
    append: 'decayLinearAppend',
    create: 'createDecayLinearState',
    serialize: 'serializeDecayLinearState',
    deserialize: 'deserializeDecayLinearState',
    size: 'decayLinearStateSize',
    extras: { decay: { make: () => uniform(3, T, 0.5, 1), bad: [0, -0.1, 1.5, 1 + 1e-9] } },
    config: { scale: 0.5 },
    keys: { scale: 'pos' },
    required: [],
  },
  {
    name: 'gated-deltanet',
    reference: 'gatedDeltaNet',
    fast: 'gatedDeltaNetChunked',
    append: 'gatedDeltaNetAppend',
    create: 'createGatedDeltaNetState',
    serialize: 'serializeGatedDeltaNetState',
    deserialize: 'deserializeGatedDeltaNetState',
    size: 'gatedDeltaNetStateSize',
    extras: {
      alpha: { make: () => uniform(4, T, 0.5, 1), bad: [0, -0.5, 1.01] },
      beta: { make: () => uniform(5, T, 0, 2), bad: [-0.1, 2.1] },
    },
    config: { scale: 0.5 },
    keys: { scale: 'pos' },
    required: [],
  },
  {
    name: 'vq',
    reference: 'vqAttention',
    fast: 'vqAttentionBlocked',
    append: 'vqAppend',
    create: 'createVqState',
    serialize: 'serializeVqState',
    deserialize: 'deserializeVqState',
    size: 'vqStateSize',
    extras: { codebook: { make: () => randomSeq(6, S, dk, 1).q, bad: [] } },
    config: { codebookSize: S, blockLength: 2, beta: 0.7 },
    keys: { codebookSize: 'int1', blockLength: 'int1', beta: 'pos' },
    required: ['codebookSize'],
  },
  {
    name: 'kvm',
    reference: 'kvmAttention',
    fast: 'kvmAttentionBlocked',
    append: 'kvmAppend',
    create: 'createKvmState',
    serialize: 'serializeKvmState',
    deserialize: 'deserializeKvmState',
    size: 'kvmStateSize',
    extras: {},
    config: { window: 4, blockSize: 2, beta: 4, budget: { kind: 'fixed', rows: 2 }, sinks: 1 },
    keys: { window: 'int1', blockSize: 'int1', beta: 'pos', budget: 'budget', sinks: 'int0' },
    required: ['window', 'beta', 'budget'],
  },
];

function seqOf(m: Mixer, seed = 1): Record<string, unknown> {
  const seq: Record<string, unknown> = { ...wellFormed(seed) };
  for (const [key, e] of Object.entries(m.extras)) seq[key] = e.make();
  return seq;
}

const NOT_OBJECTS: [string, unknown][] = [
  ['null', null],
  ['a number', 5],
  ['a string', 'x'],
  ['a boolean', true],
  ['an array', []],
  ['a typed array', new Float32Array(2)],
  ['a function', () => 1],
];

/** Bad values of a float array of `length` values: wrong kinds, lengths and non-finite entries. */
function badArrays(length: number): [string, unknown][] {
  const withAt = (x: number) => {
    const a = new Float64Array(length);
    a[length - 1] = x;
    return a;
  };
  return [
    ['null', null],
    ['undefined', undefined],
    ['a number', 3],
    ['a plain array', Array.from({ length }, () => 0)],
    ['an Int32Array', new Int32Array(length)],
    ['one value short', new Float64Array(length - 1)],
    ['one value long', new Float32Array(length + 1)],
    ['empty', new Float64Array(0)],
    ['NaN', withAt(Number.NaN)],
    ['Infinity', withAt(Number.POSITIVE_INFINITY)],
    ['-Infinity', withAt(Number.NEGATIVE_INFINITY)],
  ];
}

/** Bad seq objects for mixer m, each with the argument the error must name. */
function badSeqs(m: Mixer): [string, unknown, string][] {
  const good = seqOf(m);
  const out: [string, unknown, string][] = [['undefined', undefined, 'seq']];
  for (const [what, x] of NOT_OBJECTS) out.push([what, x, 'seq']);
  const dims: [string, unknown[]][] = [
    ['seqLen', [-1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '6', null, undefined, 6n]],
    ['keyDim', [0, -4, 1.5, Number.NaN, '4', null, undefined]],
    ['valueDim', [0, -3, 2.5, Number.NaN, '3', null, undefined]],
  ];
  for (const [key, values] of dims) {
    for (const x of values) out.push([`${key} ${String(x)}`, { ...good, [key]: x }, `seq.${key}`]);
  }
  const lengths: Record<string, number> = { q: T * dk, k: T * dk, v: T * dv };
  for (const key of Object.keys(m.extras)) lengths[key] = key === 'codebook' ? S * dk : T;
  for (const [key, n] of Object.entries(lengths)) {
    for (const [what, x] of badArrays(n)) {
      out.push([`${key} ${what}`, { ...good, [key]: x }, `seq.${key}`]);
    }
  }
  for (const [key, e] of Object.entries(m.extras)) {
    for (const x of e.bad) {
      const a = e.make();
      a[2] = x;
      out.push([`${key} value ${x}`, { ...good, [key]: a }, `seq.${key}`]);
    }
  }
  return out;
}

const BAD_BY_KIND: Record<ConfigKind, unknown[]> = {
  pos: [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1', null, true, {}, []],
  int1: [0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '2', null, true],
  int0: [-1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, '1', null],
  bool: ['false', 'true', 0, 1, null, {}],
  window: [0, -1, 2.5, Number.NaN, Number.NEGATIVE_INFINITY, '3', null],
  rope: [5, 'x', true, [], {}, { base: 0 }, { base: '10' }, { bse: 10 }, { base: 10, extra: 1 }],
  budget: [
    null,
    5,
    'fixed',
    {},
    { kind: 'fixd', rows: 2 },
    { kind: 'fixed' },
    { kind: 'fixed', rows: 0 },
    { kind: 'fixed', rows: 2, extra: 1 },
    { kind: 'sqrt' },
    { kind: 'sqrt', scale: -1 },
    { kind: 'sqrt', rows: 2 },
    { kind: 'saturating', rows: 1.5 },
  ],
};

/** A likely typo of a key (last letter dropped, or doubled for short keys). */
function typo(key: string): string {
  return key.length > 4 ? key.slice(0, -1) : `${key}${key.at(-1)}`;
}

/** Bad configs for mixer m: [label, config, argument, message hint]. */
function badConfigs(m: Mixer): [string, unknown, string, string?][] {
  const out: [string, unknown, string, string?][] = [];
  for (const [what, x] of NOT_OBJECTS) out.push([`config ${what}`, x, 'config']);
  if (m.required.length > 0) out.push(['config undefined', undefined, 'config']);
  for (const key of m.required) {
    const c = { ...m.config };
    delete c[key];
    out.push([`config without ${key}`, c, `config.${key}`]);
  }
  for (const key of Object.keys(m.keys)) {
    const t = typo(key);
    out.push([
      `config key ${t}`,
      { ...m.config, [t]: m.config[key] },
      `config.${t}`,
      `unknown config key '${t}' (did you mean '${key}'?)`,
    ]);
  }
  out.push(['config key zzz', { ...m.config, zzz: 1 }, 'config.zzz', "unknown config key 'zzz'"]);
  for (const [key, kind] of Object.entries(m.keys)) {
    for (const x of BAD_BY_KIND[kind]) {
      out.push([
        `config.${key} = ${JSON.stringify(x) ?? String(x)}`,
        { ...m.config, [key]: x },
        `config.${key}`,
      ]);
    }
  }
  if (m.name === 'kvm')
    out.push(['window % blockSize ≠ 0', { ...m.config, window: 5 }, 'config.window']);
  return out;
}

/** A live state of mixer m (after a short append) and a config that creates it. */
function liveState(m: Mixer, dims = { keyDim: dk, valueDim: dv }): Record<string, unknown> {
  const state = call(m.create, dims, m.config) as Record<string, unknown>;
  const seq: Record<string, unknown> = { ...seqOf(m, 9), ...dims };
  if (dims.keyDim !== dk || dims.valueDim !== dv) {
    Object.assign(seq, randomSeq(9, T, dims.keyDim, dims.valueDim));
    if (m.extras.codebook) seq.codebook = randomSeq(6, S, dims.keyDim, 1).q;
  }
  call(m.append, state, seq);
  return state;
}

/** Bad state arguments for mixer m: other mixers' states, forged objects, wrong dims. */
function badStates(m: Mixer, argument: string): [string, unknown, string][] {
  const out: [string, unknown, string][] = [];
  for (const [what, x] of NOT_OBJECTS) out.push([`${argument} ${what}`, x, argument]);
  out.push([`${argument} {}`, {}, argument]);
  for (const other of mixers) {
    if (other.name !== m.name)
      out.push([`${argument} of ${other.name}`, liveState(other), argument]);
  }
  const live = liveState(m);
  out.push([`${argument} tagged only`, { mixer: m.name }, argument]);
  out.push([`${argument} keyDim 0`, { ...live, keyDim: 0 }, `${argument}.keyDim`]);
  out.push([`${argument} position -1`, { ...live, position: -1 }, `${argument}.position`]);
  out.push([`${argument} position 1.5`, { ...live, position: 1.5 }, `${argument}.position`]);
  out.push([`${argument} config null`, { ...live, config: null }, `${argument}.config`]);
  const config = live.config as Record<string, unknown>;
  out.push([
    `${argument} config with a stray key`,
    { ...live, config: { ...config, zz: 1 } },
    `${argument}.config`,
  ]);
  const [firstKey] = Object.keys(config);
  out.push([
    `${argument} config missing ${firstKey}`,
    { ...live, config: { ...config, [firstKey]: undefined } },
    `${argument}.config`,
  ]);
  // Counters that disagree with the position (streams with position-dependent layouts).
  if (m.name === 'softmax') {
    const rows = (live.length as number) - 1;
    out.push([
      `${argument} length ≠ min(position, window)`,
      {
        ...live,
        length: rows,
        keys: (live.keys as Float64Array).slice(dk),
        values: (live.values as Float64Array).slice(dv),
      },
      `${argument}.length`,
    ]);
  }
  if (m.name === 'vq' || m.name === 'kvm') {
    out.push([
      `${argument} position + 1`,
      { ...live, position: (live.position as number) + 1 },
      argument,
    ]);
  }
  if (m.name === 'vq') {
    const counts = (live.counts as Float64Array).slice();
    counts[0] += 1;
    out.push([`${argument} counts ≠ cached tokens`, { ...live, counts }, `${argument}.counts`]);
  }
  for (const [key, value] of Object.entries(live)) {
    if (value instanceof Float64Array) {
      const field = `${argument}.${key}`;
      out.push([
        `${field} too long`,
        { ...live, [key]: new Float64Array(value.length + 1) },
        field,
      ]);
      out.push([`${field} as Array`, { ...live, [key]: Array.from(value) }, field]);
      out.push([`${field} as Float32Array`, { ...live, [key]: Float32Array.from(value) }, field]);
    }
  }
  out.push([
    `${argument} with other dims`,
    liveState(m, { keyDim: 2, valueDim: dv }),
    'seq.keyDim',
  ]);
  out.push([
    `${argument} with other valueDim`,
    liveState(m, { keyDim: dk, valueDim: 2 }),
    'seq.valueDim',
  ]);
  return out;
}

const dOutputs = (): [string, unknown][] => badArrays(T * dv);

const BAD_DIMS: [string, unknown, string][] = [
  ['dims undefined', undefined, 'dims'],
  ...NOT_OBJECTS.map(([w, x]): [string, unknown, string] => [`dims ${w}`, x, 'dims']),
  ['dims {}', {}, 'dims.keyDim'],
  ['keyDim 0', { keyDim: 0, valueDim: dv }, 'dims.keyDim'],
  ['keyDim 2.5', { keyDim: 2.5, valueDim: dv }, 'dims.keyDim'],
  ['keyDim NaN', { keyDim: Number.NaN, valueDim: dv }, 'dims.keyDim'],
  ['keyDim "4"', { keyDim: '4', valueDim: dv }, 'dims.keyDim'],
  ['valueDim -1', { keyDim: dk, valueDim: -1 }, 'dims.valueDim'],
  ['valueDim Infinity', { keyDim: dk, valueDim: Number.POSITIVE_INFINITY }, 'dims.valueDim'],
  ['valueDim missing', { keyDim: dk }, 'dims.valueDim'],
];

const BAD_T: unknown[] = [
  -1,
  2.5,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  -Number.MAX_VALUE,
  '3',
  null,
  undefined,
  3n,
];

let total = 0;

describe.each(mixers)('$name: every entry point refuses bad input by name', (m) => {
  const dims = { keyDim: dk, valueDim: dv };
  const dOut = new Float64Array(T * dv).fill(0.1);
  const backward = `${m.reference}Backward`;
  const fastBackward = `${m.fast}Backward`;

  it('seq (reference, fast, backward, fast backward, append)', () => {
    const cases: Case[] = [];
    for (const [what, seq, argument] of badSeqs(m)) {
      cases.push({
        label: `${m.reference} ${what}`,
        run: () => call(m.reference, seq, m.config),
        argument,
      });
      cases.push({ label: `${m.fast} ${what}`, run: () => call(m.fast, seq, m.config), argument });
      cases.push({
        label: `${backward} ${what}`,
        run: () => call(backward, seq, m.config, dOut),
        argument,
      });
      cases.push({
        label: `${fastBackward} ${what}`,
        run: () => call(fastBackward, seq, m.config, dOut),
        argument,
      });
      const state = liveState(m);
      const before = call(m.serialize, state);
      cases.push({
        label: `${m.append} ${what}`,
        run: () => {
          try {
            return call(m.append, state, seq);
          } finally {
            expect(call(m.serialize, state), `${what}: state changed by a failed append`).toBe(
              before,
            );
          }
        },
        argument,
      });
    }
    total += cases.length;
    expect(failures(cases)).toEqual([]);
  });

  it('config (reference, fast, backward, fast backward, create…State, …StateSize, stateSize)', () => {
    const cases: Case[] = [];
    const seq = seqOf(m);
    for (const [what, config, argument, hint] of badConfigs(m)) {
      const add = (label: string, run: () => unknown) =>
        cases.push({ label: `${label} ${what}`, run, argument, hint });
      add(m.reference, () => call(m.reference, seq, config));
      add(m.fast, () => call(m.fast, seq, config));
      add(backward, () => call(backward, seq, config, dOut));
      add(fastBackward, () => call(fastBackward, seq, config, dOut));
      add(m.create, () => call(m.create, dims, config));
      add(m.size, () => call(m.size, dims, config, 10));
      add('stateSize', () => api.stateSize(m.name, dims, config as never, 10));
      // A config given with a state must be valid too (then equal to the state's).
      if (config !== undefined) {
        add(`${m.reference}+state`, () => call(m.reference, seq, config, liveState(m)));
      }
    }
    if (m.name === 'softmax') {
      const odd = { ...randomSeq(2, T, 3, dv) };
      cases.push({
        label: 'rope with odd keyDim',
        run: () => call(m.reference, odd, { rope: { base: 10 } }),
        argument: 'config.rope',
      });
      cases.push({
        label: 'resolveSoftmaxConfig keyDim 0',
        run: () => api.resolveSoftmaxConfig({}, 0),
        argument: 'keyDim',
      });
      for (const [what, config, argument] of badConfigs(m)) {
        cases.push({
          label: `resolveSoftmaxConfig ${what}`,
          run: () => api.resolveSoftmaxConfig(config as never, dk),
          argument,
        });
      }
    }
    // A stream cannot change its config.
    const other = { ...m.config };
    const [firstKey] = Object.keys(m.keys).filter((key) => m.keys[key] === 'pos');
    other[firstKey] = (m.config[firstKey] as number) * 2;
    cases.push({
      label: 'config ≠ state config',
      run: () => call(m.reference, seq, other, liveState(m)),
      argument: 'config',
    });
    cases.push({
      label: 'fast: config ≠ state config',
      run: () => call(m.fast, seq, other, { state: liveState(m) }),
      argument: 'config',
    });
    total += cases.length;
    expect(failures(cases)).toEqual([]);
  });

  it('dims and T (create…State, …StateSize, stateSize)', () => {
    const cases: Case[] = [];
    for (const [what, d, argument] of BAD_DIMS) {
      cases.push({
        label: `${m.create} ${what}`,
        run: () => call(m.create, d, m.config),
        argument,
      });
      cases.push({
        label: `${m.size} ${what}`,
        run: () => call(m.size, d, m.config, 10),
        argument,
      });
      cases.push({
        label: `stateSize ${what}`,
        run: () => api.stateSize(m.name, d as never, m.config as never, 10),
        argument,
      });
    }
    for (const t of BAD_T) {
      cases.push({
        label: `${m.size} T ${String(t)}`,
        run: () => call(m.size, dims, m.config, t),
        argument: 'T',
      });
      cases.push({
        label: `stateSize T ${String(t)}`,
        run: () => api.stateSize(m.name, dims, m.config as never, t as number),
        argument: 'T',
      });
    }
    total += cases.length;
    expect(failures(cases)).toEqual([]);
  });

  it('states (reference initialState, fast options.state, append, serialize) and a failed append keeps the state', () => {
    const cases: Case[] = [];
    const seq = seqOf(m);
    for (const [what, s, argument] of badStates(m, 'initialState')) {
      cases.push({
        label: `${m.reference} ${what}`,
        run: () => call(m.reference, seq, undefined, s),
        argument,
      });
    }
    for (const [what, s, argument] of badStates(m, 'options.state')) {
      cases.push({
        label: `${m.fast} ${what}`,
        run: () => call(m.fast, seq, undefined, { state: s }),
        argument,
      });
    }
    for (const [what, s, argument] of badStates(m, 'state')) {
      cases.push({ label: `${m.append} ${what}`, run: () => call(m.append, s, seq), argument });
      if (!argument.startsWith('seq')) {
        cases.push({ label: `${m.serialize} ${what}`, run: () => call(m.serialize, s), argument });
      }
    }
    cases.push({
      label: `${m.serialize} undefined`,
      run: () => call(m.serialize, undefined),
      argument: 'state',
    });
    total += cases.length;
    expect(failures(cases)).toEqual([]);
  });

  it('options, dOutput and serialized text', () => {
    const cases: Case[] = [];
    const seq = seqOf(m);
    const badOptions: [string, unknown, string][] = [
      ...NOT_OBJECTS.map(([w, x]): [string, unknown, string] => [`options ${w}`, x, 'options']),
      ['options {stat}', { stat: liveState(m) }, 'options.stat'],
      ['options {outt}', { outt: new Float32Array(T * dv) }, 'options.outt'],
      ['out Float64Array', { out: new Float64Array(T * dv) }, 'options.out'],
      ['out short', { out: new Float32Array(T * dv - 1) }, 'options.out'],
      ['out null', { out: null }, 'options.out'],
      ['out number', { out: 3 }, 'options.out'],
    ];
    for (const [what, options, argument] of badOptions) {
      cases.push({
        label: `${m.fast} ${what}`,
        run: () => call(m.fast, seq, m.config, options),
        argument,
      });
    }
    for (const [what, d] of dOutputs()) {
      cases.push({
        label: `${backward} dOutput ${what}`,
        run: () => call(backward, seq, m.config, d),
        argument: 'dOutput',
      });
      cases.push({
        label: `${fastBackward} dOutput ${what}`,
        run: () => call(fastBackward, seq, m.config, d),
        argument: 'dOutput',
      });
    }
    const text = call(m.serialize, liveState(m)) as string;
    const otherText = call(
      mixers.find((x) => x.name !== m.name)!.serialize,
      liveState(mixers.find((x) => x.name !== m.name)!),
    );
    const badTexts: [string, unknown][] = [
      ['undefined', undefined],
      ['a number', 5],
      ['an object', {}],
      ['not JSON', '{nope'],
      ['a JSON array', '[]'],
      ['a JSON number', '5'],
      ['JSON null', 'null'],
      ['wrong format', text.replace('"ovq-baselines-state"', '"other"')],
      ['wrong version', text.replace('"version":1', '"version":2')],
      ['another mixer', otherText],
      ['keyDim 0', text.replace(`"keyDim":${dk}`, '"keyDim":0')],
      ['position -1', text.replace(/"position":\d+/, '"position":-1')],
      ['a NaN array value', text.replace(/":\[([-\d.e]+)/, '":[null')],
    ];
    for (const [what, t] of badTexts) {
      cases.push({
        label: `${m.deserialize} ${what}`,
        run: () => call(m.deserialize, t),
        argument: 'text',
      });
    }
    total += cases.length;
    expect(failures(cases)).toEqual([]);
  });
});

describe('generic entry points and overflow', () => {
  it('stateSize(mixer) and budgetRows', () => {
    const dims = { keyDim: dk, valueDim: dv };
    const cases: Case[] = [];
    for (const mixer of ['mamba', 5, undefined, null, 'Softmax']) {
      cases.push({
        label: `stateSize mixer ${String(mixer)}`,
        run: () => api.stateSize(mixer as never, dims, {} as never, 3),
        argument: 'mixer',
      });
    }
    for (const budget of BAD_BY_KIND.budget) {
      cases.push({
        label: `budgetRows ${JSON.stringify(budget)}`,
        run: () => api.budgetRows(budget as never, 3),
        argument: 'budget',
      });
    }
    for (const tau of BAD_T) {
      cases.push({
        label: `budgetRows tau ${String(tau)}`,
        run: () => api.budgetRows({ kind: 'fixed', rows: 2 }, tau as number),
        argument: 'tau',
      });
    }
    // Sizes no array can hold are refused up front (not a RangeError from the allocation).
    const sizes: [string, () => unknown, string][] = [
      [
        'createLinearState dims 1e6×1e6',
        () => api.createLinearState({ keyDim: 1e6, valueDim: 1e6 }),
        'dims',
      ],
      [
        'createSoftmaxState keyDim 1e300',
        () => api.createSoftmaxState({ keyDim: 1e300, valueDim: 1 }),
        'dims.keyDim',
      ],
      [
        'decayLinearStateSize valueDim 2^60',
        () => api.decayLinearStateSize({ keyDim: 1, valueDim: 2 ** 60 }, {}, 1),
        'dims.valueDim',
      ],
      [
        'createVqState codebookSize 1e9',
        () => api.createVqState(dims, { codebookSize: 1e9 }),
        'config.codebookSize',
      ],
      [
        'gatedDeltaNet seqLen 0, dims 1e5×1e5',
        () =>
          api.gatedDeltaNet({
            q: new Float64Array(0),
            k: new Float64Array(0),
            v: new Float64Array(0),
            seqLen: 0,
            keyDim: 1e5,
            valueDim: 1e5,
            alpha: new Float64Array(0),
            beta: new Float64Array(0),
          }),
        'seq',
      ],
    ];
    for (const [label, run, argument] of sizes) cases.push({ label, run, argument });
    // finishQKGradients is exported too.
    const c = { normalize: false, rope: null };
    const p = { processed: new Float64Array(8), norms: null };
    const g = () => new Float64Array(8);
    const finish: [string, unknown[], string][] = [
      ['c null', [null, p, p, g(), g(), 2, 4], 'c'],
      ['c.normalize "no"', [{ ...c, normalize: 'no' }, p, p, g(), g(), 2, 4], 'c.normalize'],
      ['c.rope {}', [{ ...c, rope: {} }, p, p, g(), g(), 2, 4], 'c.rope'],
      ['qp undefined', [c, undefined, p, g(), g(), 2, 4], 'qp'],
      [
        'kp.processed short',
        [c, p, { processed: new Float64Array(7), norms: null }, g(), g(), 2, 4],
        'kp.processed',
      ],
      [
        'norms missing with normalize',
        [{ ...c, normalize: true }, p, p, g(), g(), 2, 4],
        'qp.norms',
      ],
      ['gq short', [c, p, p, new Float64Array(7), g(), 2, 4], 'gq'],
      ['gk a plain array', [c, p, p, g(), [0, 0, 0, 0, 0, 0, 0, 0], 2, 4], 'gk'],
      ['T -1', [c, p, p, g(), g(), -1, 4], 'T'],
      ['dk 0', [c, p, p, g(), g(), 2, 0], 'dk'],
    ];
    for (const [label, args, argument] of finish) {
      cases.push({
        label: `finishQKGradients ${label}`,
        run: () => call('finishQKGradients', ...args),
        argument,
      });
    }
    expect(MIXERS.length).toBe(6);
    total += cases.length;
    expect(failures(cases)).toEqual([]);
  });

  it('finite inputs that overflow are refused, never returned as NaN', () => {
    const huge = (x: number) => {
      const s = randomSeq(7, T, dk, dv);
      return { ...s, q: s.q.map(() => x), k: s.k.map(() => x) };
    };
    const dOut = new Float64Array(T * dv).fill(0.1);
    const cases: Case[] = [
      {
        label: 'softmaxAttention q = k = 1e200',
        run: () => api.softmaxAttention(huge(1e200)),
        argument: 'seq.q',
      },
      {
        label: 'softmaxAttentionBackward q = k = 1e200',
        run: () => api.softmaxAttentionBackward(huge(1e200), undefined, dOut),
        argument: 'seq.q',
      },
      {
        label: 'softmaxAttentionTiled q = k = 1e200 (beyond Float32)',
        run: () => api.softmaxAttentionTiled(huge(1e200)),
        argument: 'seq.q',
      },
      {
        label: 'softmaxAttentionTiled q = k = 1e20 (logits beyond Float32)',
        run: () => api.softmaxAttentionTiled(huge(1e20)),
        argument: 'seq.q',
      },
      {
        label: 'softmaxAttentionTiledBackward q = k = 1e20',
        run: () => api.softmaxAttentionTiledBackward(huge(1e20), undefined, dOut),
        argument: 'seq.q',
      },
      {
        label: 'linearAttention eps 0',
        run: () => api.linearAttention(huge(1), { eps: 0 }),
        argument: 'config.eps',
      },
      {
        label: 'linearAttentionChunked eps 0',
        run: () => api.linearAttentionChunked(huge(1), { eps: 0 }),
        argument: 'config.eps',
      },
      {
        label: 'linearAttention q = k = 1e200',
        run: () => api.linearAttention(huge(1e200)),
        argument: 'seq.q',
      },
      {
        label: 'linearAttentionChunked q = k = 1e30',
        run: () => api.linearAttentionChunked(huge(1e30)),
        argument: 'seq',
      },
      {
        label: 'decayLinearAttention q = k = 1e200',
        run: () =>
          api.decayLinearAttention({ ...huge(1e200), decay: new Float64Array(T).fill(0.5) }),
        argument: 'seq',
      },
      {
        label: 'vqAttention q = codebook = 1e200',
        run: () =>
          api.vqAttention(
            { ...huge(1e200), codebook: new Float64Array(S * dk).fill(1e200) },
            { codebookSize: S },
          ),
        argument: 'seq',
      },
    ];
    total += cases.length;
    expect(failures(cases)).toEqual([]);
    // Large but representable inputs still work (normalisation does not overflow at 1e200).
    const out = api.softmaxAttention(huge(1e200), { normalize: true }).output;
    expect(out.every(Number.isFinite)).toBe(true);
  });

  it('the error shape: name, argument, value, expected (like @ovq/core OvqInputError)', () => {
    try {
      api.softmaxAttention(randomSeq(1, T, dk, dv), { widow: 1 } as never);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BaselineInputError);
      const err = e as BaselineInputError;
      expect(err.name).toBe('BaselineInputError');
      expect(err.argument).toBe('config.widow');
      expect(err.value).toBe(1);
      expect(err.expected).toBe('one of beta, normalize, window, rope');
      expect(err.message).toBe(
        "config.widow: unknown config key 'widow' (did you mean 'window'?); expected one of beta, normalize, window, rope",
      );
    }
    expect(() =>
      api.softmaxAttention(randomSeq(1, T, dk, dv), { normalize: 'false' } as never),
    ).toThrow('config.normalize: got "false"; expected true or false');
    expect(() => api.softmaxStateSize({ keyDim: dk, valueDim: dv }, undefined, -1)).toThrow(
      'T: got -1; expected a non-negative integer',
    );
  });

  it('covers the promised number of cases', () => {
    // Sum of the generated cases above (runs last in this file); see the README for the count.
    expect(total).toBeGreaterThanOrEqual(5256);
  });
});
