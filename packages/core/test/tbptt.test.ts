// Truncated backprop through time: gradients w.r.t. an initial state (rows and pending buffer)
// and from a final-state gradient, (a) against float64 central differences of the reference
// forward, (b) segment-by-segment backward = whole-sequence backward, (c) the Float32 path's
// dInitialState against the reference's.
import { resolve } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import {
  type OvqConfig,
  OvqInputError,
  type OvqState,
  type OvqStateGradient,
  ovqAttention,
  ovqAttentionBackward,
  ovqAttentionReference,
  ovqAttentionReferenceBackward,
  type Seq,
} from '../src/index.js';
import { STORAGE } from '../src/ovq/state.js';
import {
  assertClose,
  centralDifferences,
  createRng,
  dot,
  poisoned,
  randn,
  randomSeq,
} from '../src/testing/index.js';
import { setOvqKernels } from '../src/wasm/simd.js';
import { runReadmeExample } from './readme-example.js';

// Merges, spawns and pending reads all occur: C = 3, capacity 5, d = 4/3.
const CASES: [string, Partial<OvqConfig>][] = [
  ['default', {}],
  ['gaussian', { read: 'gaussian' }],
  ['ema', { update: { kind: 'ema', rate: 0.4 } }],
  ['gaussian-ema', { read: 'gaussian', update: { kind: 'ema', rate: 0.25 } }],
  ['first', { spawn: 'first' }],
  ['random', { spawn: 'random', seed: 5 }],
  ['log', { growth: { kind: 'log', alpha: 2 } }],
  ['sqrt', { growth: { kind: 'sqrt', scale: 1 } }],
  ['linear', { growth: { kind: 'linear', rate: 0.3 } }],
  ['fixed', { growth: 'fixed' }],
  ['full', { growth: 'full', capacity: 40 }],
  ['unnormalized', { normalize: false, beta: 0.7 }],
  [
    'unnormalized-gaussian-ema',
    { normalize: false, beta: 0.7, read: 'gaussian', update: { kind: 'ema', rate: 0.5 } },
  ],
];

const DK = 4;
const DV = 3;

/**
 * The state's continuous parts as live arrays of its package-internal storage (the public getters
 * return copies): perturbed in place for central differences.
 */
function parts(state: OvqState): Float64Array[] {
  const s = state[STORAGE];
  return [
    s.centroidKeys,
    s.centroidValues,
    s.pendingKeys.subarray(0, s.pendingCount * s.keyDim),
    s.pendingValues.subarray(0, s.pendingCount * s.valueDim),
  ];
}

const PART_NAMES = ['keys', 'values', 'pendingKeys', 'pendingValues'] as const;

/** A state after `prefix` random tokens (rows, counts and, unless prefix % C = 0, pending). */
function prefixState(config: OvqConfig, prefix: number, seed: number): OvqState {
  return ovqAttentionReference(randomSeq(seed, prefix, DK, DV), config).state;
}

function randomStateGradient(seed: number, state: OvqState): OvqStateGradient<Float64Array> {
  const rng = createRng(seed);
  return {
    keys: randn(rng, state.size * DK),
    values: randn(rng, state.size * DV),
    pendingKeys: randn(rng, state.pendingCount * DK),
    pendingValues: randn(rng, state.pendingCount * DV),
  };
}

/** ⟨g, state⟩ over the continuous parts. */
function stateDot(g: OvqStateGradient, state: OvqState): number {
  const p = parts(state);
  return PART_NAMES.reduce((s, name, i) => s + dot(g[name], p[i]), 0);
}

describe('reference dInitialState against float64 central differences', () => {
  for (const [name, extra] of CASES) {
    // prefix 7 leaves 1 pending token of 3, prefix 9 none; T = 8 ends with 2 or 0 pending.
    for (const [prefix, T] of [
      [7, 8],
      [9, 6],
      [5, 1],
    ]) {
      it(`${name}, prefix ${prefix}, T ${T}`, () => {
        const config: OvqConfig = { chunkSize: 3, capacity: 5, beta: 2.5, ...extra };
        const init = prefixState(config, prefix, prefix * 13 + name.length);
        const seq = randomSeq(name.length * 7 + T, T, DK, DV);
        const dOut = randn(createRng(99 + T), T * DV);
        const fwd = ovqAttentionReference(seq, config, { initialState: init });
        const dFinal = randomStateGradient(5 + prefix, fwd.state);
        // The loss with the discrete decisions held fixed (ALGORITHM.md §5).
        const loss = () => {
          const r = ovqAttentionReference(seq, config, { initialState: init, replay: fwd.trace });
          return dot(dOut, r.output) + stateDot(dFinal, r.state);
        };
        const g = ovqAttentionReferenceBackward(seq, config, dOut, {
          initialState: init,
          dFinalState: dFinal,
        });
        expect(g.trace).toEqual(fwd.trace);
        const initParts = parts(init);
        PART_NAMES.forEach((part, i) => {
          expect(g.dInitialState[part].length, part).toBe(initParts[i].length);
          assertClose(part, centralDifferences(loss, initParts[i]), g.dInitialState[part], 1e-7);
        });
        assertClose('dq', centralDifferences(loss, seq.q), g.dq, 1e-7);
        assertClose('dk', centralDifferences(loss, seq.k), g.dk, 1e-7);
        assertClose('dv', centralDifferences(loss, seq.v), g.dv, 1e-7);
        // Non-trivial: the initial rows do receive gradient.
        expect(Math.hypot(...g.dInitialState.keys)).toBeGreaterThan(0);
      });
    }
  }
});

type Grads = {
  dq: ArrayLike<number>;
  dk: ArrayLike<number>;
  dv: ArrayLike<number>;
  dbeta: number;
  dInitialState: OvqStateGradient;
};

/** The tokens [from, to) of a sequence. */
function slice(seq: Seq, from: number, to: number): Seq {
  const { keyDim: dk, valueDim: dv } = seq;
  return {
    q: seq.q.slice(from * dk, to * dk),
    k: seq.k.slice(from * dk, to * dk),
    v: seq.v.slice(from * dv, to * dv),
    seqLen: to - from,
    keyDim: dk,
    valueDim: dv,
  };
}

function concat(parts: ArrayLike<number>[]): Float64Array {
  const out = new Float64Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

type Path = {
  forward: (seq: Seq, config: OvqConfig, init?: OvqState) => { state: OvqState };
  backward: (
    seq: Seq,
    config: OvqConfig,
    dOut: ArrayLike<number>,
    init: OvqState | undefined,
    dFinal: OvqStateGradient | undefined,
  ) => Grads;
};

const REFERENCE: Path = {
  forward: (seq, config, init) => ovqAttentionReference(seq, config, { initialState: init }),
  backward: (seq, config, dOut, init, dFinal) =>
    ovqAttentionReferenceBackward(seq, config, dOut, { initialState: init, dFinalState: dFinal }),
};

const FAST: Path = {
  forward: (seq, config, init) => ovqAttention(seq, config, { initialState: init }),
  backward: (seq, config, dOut, init, dFinal) => {
    const T = seq.seqLen;
    // NaN-poisoned buffers: a gradient row the backward skips fails the comparison.
    const out = {
      dq: poisoned(T * seq.keyDim),
      dk: poisoned(T * seq.keyDim),
      dv: poisoned(T * seq.valueDim),
    };
    const g = ovqAttentionBackward(seq, config, dOut, {
      initialState: init,
      dFinalState: dFinal,
      out,
    });
    expect(g.dq).toBe(out.dq);
    return g;
  },
};

/**
 * Forward segment by segment carrying the state, then backward in reverse feeding each segment's
 * dInitialState to the previous segment as its dFinalState.
 */
function segmentedBackward(
  path: Path,
  seq: Seq,
  config: OvqConfig,
  dOut: Float64Array,
  cuts: number[],
  init: OvqState | undefined,
  dFinal: OvqStateGradient | undefined,
): Grads {
  const bounds = [0, ...cuts, seq.seqLen];
  const starts: (OvqState | undefined)[] = [init];
  for (let s = 0; s + 1 < bounds.length - 1; s++) {
    starts.push(path.forward(slice(seq, bounds[s], bounds[s + 1]), config, starts[s]).state);
  }
  const parts: Grads[] = [];
  let carry = dFinal;
  for (let s = bounds.length - 2; s >= 0; s--) {
    const [a, b] = [bounds[s], bounds[s + 1]];
    const g = path.backward(slice(seq, a, b), config, dOut.slice(a * DV, b * DV), starts[s], carry);
    parts.unshift(g);
    carry = g.dInitialState;
  }
  return {
    dq: concat(parts.map((g) => g.dq)),
    dk: concat(parts.map((g) => g.dk)),
    dv: concat(parts.map((g) => g.dv)),
    dbeta: parts.reduce((s, g) => s + g.dbeta, 0),
    dInitialState: parts[0].dInitialState,
  };
}

function expectSameGrads(name: string, ref: Grads, actual: Grads, tol: number): void {
  assertClose(`${name} dq`, ref.dq, actual.dq, tol);
  assertClose(`${name} dk`, ref.dk, actual.dk, tol);
  assertClose(`${name} dv`, ref.dv, actual.dv, tol);
  assertClose(`${name} dbeta`, [ref.dbeta], [actual.dbeta], tol);
  for (const part of PART_NAMES) {
    assertClose(
      `${name} dInitialState.${part}`,
      ref.dInitialState[part],
      actual.dInitialState[part],
      tol,
    );
  }
}

// Segment cuts: inside chunks, on chunk boundaries, a 1-token segment, 2–4 segments.
const SPLITS: number[][] = [[10], [9, 18], [4, 5, 23], [1, 13, 26]];

describe('segment-by-segment backward = whole-sequence backward', () => {
  for (const [name, extra] of CASES) {
    for (const [withInit, cuts] of SPLITS.map((c, i) => [i % 2 === 1, c] as const)) {
      const label = `${name}, cuts ${cuts.join('/')}${withInit ? ', from a state' : ''}`;
      const config: OvqConfig = { chunkSize: 3, capacity: 6, beta: 2, ...extra };
      const T = 29;
      const seq = randomSeq(cuts.length * 17 + name.length, T, DK, DV);
      const dOut = randn(createRng(3 + cuts[0]), T * DV);
      const init = withInit ? prefixState(config, 8, 41) : undefined;

      it(`reference: ${label}`, () => {
        const whole = ovqAttentionReference(seq, config, { initialState: init });
        const dFinal = randomStateGradient(77, whole.state);
        const ref = REFERENCE.backward(seq, config, dOut, init, dFinal);
        const seg = segmentedBackward(REFERENCE, seq, config, dOut, cuts, init, dFinal);
        expectSameGrads('segments', ref, seg, 1e-10);
      });

      it(`Float32: ${label}`, () => {
        const whole = ovqAttentionReference(seq, config, { initialState: init });
        const fast = ovqAttention(seq, config, { initialState: init });
        // Decisions must agree for the comparison to mean anything (random data: no near-ties).
        expect(fast.trace).toEqual(whole.trace);
        const dFinal = randomStateGradient(77, whole.state);
        const ref = REFERENCE.backward(seq, config, dOut, init, dFinal);
        const wholeFast = FAST.backward(seq, config, dOut, init, dFinal);
        expectSameGrads('whole Float32 vs reference', ref, wholeFast, 1e-4);
        const seg = segmentedBackward(FAST, seq, config, dOut, cuts, init, dFinal);
        expectSameGrads('Float32 segments vs reference', ref, seg, 1e-4);
      });
    }
  }
});

describe('Float32 dInitialState against the reference at a larger size', () => {
  const cases: [string, Partial<OvqConfig>][] = [
    ['default', {}],
    ['gaussian', { read: 'gaussian' }],
    ['ema', { update: { kind: 'ema', rate: 0.3 } }],
    ['raw', { normalize: false, beta: 0.4 }],
    ['fixed', { growth: 'fixed' }],
  ];
  for (const [name, extra] of cases) {
    it.each(['js', 'wasm'] as const)(`${name}, %s kernels`, (kernels) => {
      setOvqKernels(kernels);
      onTestFinished(() => setOvqKernels('auto'));
      const [dk, dv, T] = [16, 8, 203];
      const config: OvqConfig = { chunkSize: 16, capacity: 24, beta: 3, ...extra };
      // 35 tokens: 2 absorbs and 3 pending, so chunk 0 reads 13 queries after 3 old keys (the
      // WASM softmax runs from 4 rows); then a capacity change (the test-time budget).
      const init = ovqAttentionReference(randomSeq(1, 35, dk, dv), config).state;
      const cfg = { ...config, capacity: 30 };
      const seq = randomSeq(2, T, dk, dv);
      const dOut = randn(createRng(3), T * dv);
      const whole = ovqAttentionReference(seq, cfg, { initialState: init });
      expect(ovqAttention(seq, cfg, { initialState: init }).trace).toEqual(whole.trace);
      const rng = createRng(4);
      const dFinal = {
        keys: randn(rng, whole.state.size * dk),
        values: randn(rng, whole.state.size * dv),
        pendingKeys: randn(rng, whole.state.pendingCount * dk),
      };
      const ref = ovqAttentionReferenceBackward(seq, cfg, dOut, {
        initialState: init,
        dFinalState: dFinal,
      });
      const fast = ovqAttentionBackward(seq, cfg, dOut, {
        initialState: init,
        dFinalState: dFinal,
        out: { dq: poisoned(T * dk), dk: poisoned(T * dk), dv: poisoned(T * dv) },
      });
      expect(fast.dInitialState.keys).toBeInstanceOf(Float32Array);
      expect(ref.dInitialState.keys).toBeInstanceOf(Float64Array);
      expect(fast.dInitialState.keys.length).toBe(init.size * dk);
      expect(fast.dInitialState.pendingValues.length).toBe(3 * dv);
      expectSameGrads('Float32 vs reference', ref, fast, 1e-4);
    });
  }
});

describe('TBPTT options: shapes, aliases and bad input', () => {
  const config: OvqConfig = { chunkSize: 3, capacity: 5, beta: 2 };
  const init = prefixState(config, 7, 1); // 2 absorbs, 1 pending
  const seq = randomSeq(2, 5, DK, DV);
  const dOut = randn(createRng(3), 5 * DV);
  const backwards = [
    ['ovqAttentionBackward', ovqAttentionBackward],
    ['ovqAttentionReferenceBackward', ovqAttentionReferenceBackward],
  ] as const;

  it('without an initial state, dInitialState is empty', () => {
    for (const [, backward] of backwards) {
      const g = backward(seq, config, dOut);
      for (const part of PART_NAMES) expect(g.dInitialState[part].length).toBe(0);
    }
  });

  it('the forward keeps `options.state` as an alias of `initialState`', () => {
    const a = ovqAttention(seq, config, { initialState: init });
    const b = ovqAttention(seq, config, { state: init });
    expect(Array.from(b.output)).toEqual(Array.from(a.output));
    expect(() => ovqAttention(seq, config, { initialState: init, state: init.clone() })).toThrow(
      /options\.state: is a deprecated alias of options\.initialState/,
    );
  });

  it('a state-only backward (T = 0) passes dFinalState through unchanged', () => {
    const empty = randomSeq(5, 0, DK, DV);
    const dFinal = randomStateGradient(6, init);
    for (const [, backward] of backwards) {
      const g = backward(empty, config, new Float64Array(0), {
        initialState: init,
        dFinalState: dFinal,
      });
      for (const part of PART_NAMES) assertClose(part, dFinal[part], g.dInitialState[part], 1e-7);
    }
  });

  for (const [fname, backward] of backwards) {
    const call = (options: Record<string, unknown>) => () =>
      backward(seq, config, dOut, { initialState: init, ...options } as never);
    const final = ovqAttentionReference(seq, config, { initialState: init }).state;

    it(`${fname}: wrong dFinalState lengths name the part and the expected shape`, () => {
      expect(call({ dFinalState: { keys: new Float64Array(final.size * DK + 1) } })).toThrow(
        new RegExp(
          `options\\.dFinalState\\.keys: has ${final.size * DK + 1} values; expected final size ${final.size} × keyDim ${DK}`,
        ),
      );
      expect(call({ dFinalState: { pendingValues: new Float64Array(1) } })).toThrow(
        /options\.dFinalState\.pendingValues: has 1 values; expected final pendingCount/,
      );
    });

    it(`${fname}: non-finite, unknown or non-object dFinalState is refused`, () => {
      const values = new Float64Array(final.size * DV);
      values[2] = Number.NaN;
      expect(call({ dFinalState: { values } })).toThrow(
        /options\.dFinalState\.values: value at index 2 is NaN/,
      );
      expect(call({ dFinalState: { key: new Float64Array(0) } })).toThrow(
        /options\.dFinalState\.key: is not a part of a state gradient/,
      );
      expect(call({ dFinalState: 3 })).toThrow(OvqInputError);
    });

    it(`${fname}: an initial state that does not fit is refused by name`, () => {
      expect(call({ initialState: { size: 0 } })).toThrow(
        /options\.initialState: expected an OvqState/,
      );
      const other = prefixState({ ...config, chunkSize: 4 }, 7, 1);
      expect(call({ initialState: other })).toThrow(
        /config\.chunkSize: got 3; options\.initialState was created with 4/,
      );
      const wide = ovqAttentionReference(randomSeq(1, 4, DK + 1, DV), config).state;
      expect(call({ initialState: wide })).toThrow(/options\.initialState: has keyDim 5/);
    });
  }

  it('the initial state is not modified', () => {
    const before = parts(init).map((p) => Array.from(p));
    const counts = Array.from(init.counts);
    ovqAttentionBackward(seq, config, dOut, { initialState: init });
    ovqAttentionReferenceBackward(seq, config, dOut, { initialState: init });
    ovqAttention(seq, config, { initialState: init });
    expect(parts(init).map((p) => Array.from(p))).toEqual(before);
    expect(Array.from(init.counts)).toEqual(counts);
  });
});

it('the README TBPTT example runs and its segment-wise gradients match the whole document', async () => {
  const lines = await runReadmeExample(
    resolve(__dirname, '../README.md'),
    /### Truncated backprop through time \(TBPTT\)[\s\S]*?```ts\n([\s\S]*?)```/,
  );
  expect(lines).toEqual(['segment-wise dk matches the whole document: true']);
});
