import { describe, expect, it } from 'vitest';
import {
  createOvqState,
  deserializeOvqState,
  type OvqConfig,
  ovqAppend,
  ovqAttentionReference,
  serializeOvqState,
  setOvqCapacity,
} from '../src/index.js';
import { assertClose, createRng, randomSeq } from '../src/testing/index.js';
import { causalSoftmax, randomSplits } from './helpers.js';

const OPTION_CASES: [string, Partial<OvqConfig>][] = [
  ['default', {}],
  ['gaussian', { read: 'gaussian' }],
  ['ema', { update: { kind: 'ema', rate: 0.3 } }],
  ['first', { spawn: 'first' }],
  ['random', { spawn: 'random', seed: 7 }],
  ['log', { growth: { kind: 'log', alpha: 3 } }],
  ['sqrt', { growth: { kind: 'sqrt', scale: 1.5 } }],
  ['linear', { growth: { kind: 'linear', rate: 0.25 } }],
  ['fixed', { growth: 'fixed' }],
  ['raw', { normalize: false, beta: 0.5 }],
];

describe('reference: growth full with capacity ≥ T is causal softmax attention', () => {
  for (const [T, d, C] of [
    [1, 8, 1],
    [37, 8, 1],
    [37, 8, 5],
    [63, 16, 64],
    [50, 6, 7],
  ]) {
    for (const read of ['dot', 'gaussian'] as const) {
      it(`T${T}-d${d}-C${C}-${read}`, () => {
        const seq = randomSeq(T * 100 + d, T, d, d + 1);
        const beta = 3;
        const { output, state } = ovqAttentionReference(seq, {
          chunkSize: C,
          capacity: T,
          beta,
          growth: 'full',
          read,
        });
        assertClose('output', causalSoftmax(seq.q, seq.k, seq.v, T, d, d + 1, beta), output, 1e-12);
        expect(state.size).toBe(T - state.pendingCount);
      });
    }
  }
});

describe('reference: streaming in random splits equals one call', () => {
  for (const [name, extra] of OPTION_CASES) {
    it(`T90-d5-C7-${name}`, () => {
      const T = 90;
      const config: OvqConfig = { chunkSize: 7, capacity: 6, beta: 4, ...extra };
      const seq = randomSeq(3, T, 5, 4);
      const whole = ovqAttentionReference(seq, config);
      const rng = createRng(name.length);
      for (let trial = 0; trial < 3; trial++) {
        const cuts = randomSplits(rng, T, 5);
        const state = createOvqState({ keyDim: 5, valueDim: 4 }, config);
        const out = new Float64Array(T * 4);
        for (let p = 0; p + 1 < cuts.length; p++) {
          const [a, b] = [cuts[p], cuts[p + 1]];
          const piece = ovqAppend(state, {
            q: seq.q.subarray(a * 5, b * 5),
            k: seq.k.subarray(a * 5, b * 5),
            v: seq.v.subarray(a * 4, b * 4),
            seqLen: b - a,
          });
          out.set(piece, a * 4);
        }
        expect(Array.from(out)).toEqual(Array.from(whole.output));
        expect(serializeOvqState(state)).toEqual(serializeOvqState(whole.state));
      }
    });
  }
});

describe('reference: causality', () => {
  for (const [name, extra] of OPTION_CASES.slice(0, 5)) {
    it(`T40-d4-C6-${name}`, () => {
      const config: OvqConfig = { chunkSize: 6, capacity: 5, beta: 5, ...extra };
      const seq = randomSeq(11, 40, 4, 3);
      const base = ovqAttentionReference(seq, config).output;
      const t = 23;
      const later = { ...seq, q: seq.q.slice(), k: seq.k.slice(), v: seq.v.slice() };
      for (let i = (t + 1) * 4; i < 40 * 4; i++) {
        later.q[i] += 1;
        later.k[i] -= 0.7;
      }
      for (let i = (t + 1) * 3; i < 40 * 3; i++) later.v[i] *= -2;
      const afterLater = ovqAttentionReference(later, config).output;
      expect(Array.from(afterLater.subarray(0, (t + 1) * 3))).toEqual(
        Array.from(base.subarray(0, (t + 1) * 3)),
      );
      expect(afterLater.subarray((t + 1) * 3)).not.toEqual(base.subarray((t + 1) * 3));

      const earlier = { ...seq, v: seq.v.slice() };
      earlier.v[2 * 3] += 1; // token 2's value reaches every later read, via the pending buffer or its row
      const afterEarlier = ovqAttentionReference(earlier, config).output;
      for (let s = 2; s < 40; s++) {
        const row = (x: Float64Array) => Array.from(x.subarray(s * 3, s * 3 + 3));
        expect(row(afterEarlier), `token ${s}`).not.toEqual(row(base));
      }
      expect(Array.from(afterEarlier.subarray(0, 6))).toEqual(Array.from(base.subarray(0, 6)));
    });
  }
});

describe('reference: dictionary rows are the means of their members', () => {
  for (const [name, extra] of OPTION_CASES.filter(([n]) => n !== 'ema')) {
    it(`T200-d6-C8-${name}`, () => {
      const T = 200;
      const [dk, dv] = [6, 3];
      const config: OvqConfig = { chunkSize: 8, capacity: 12, beta: 2, ...extra };
      const seq = randomSeq(5, T, dk, dv);
      const { state, trace } = ovqAttentionReference(seq, config);
      const members: number[][] = Array.from({ length: state.size }, () => []);
      trace.forEach((record, chunk) => {
        record.assignment.forEach((row, j) => {
          members[row].push(chunk * 8 + j);
        });
      });
      const normalize = config.normalize !== false;
      let absorbed = 0;
      for (let i = 0; i < state.size; i++) {
        expect(state.counts[i]).toBe(members[i].length);
        absorbed += state.counts[i];
        const keyMean = new Float64Array(dk);
        const valueMean = new Float64Array(dv);
        for (const t of members[i]) {
          let norm = 0;
          for (let d = 0; d < dk; d++) norm += seq.k[t * dk + d] ** 2;
          const scale = normalize ? 1 / Math.sqrt(norm) : 1;
          for (let d = 0; d < dk; d++)
            keyMean[d] += (seq.k[t * dk + d] * scale) / members[i].length;
          for (let d = 0; d < dv; d++) valueMean[d] += seq.v[t * dv + d] / members[i].length;
        }
        assertClose(
          `row ${i} key`,
          keyMean,
          state.centroidKeys.subarray(i * dk, (i + 1) * dk),
          1e-12,
        );
        assertClose(
          `row ${i} value`,
          valueMean,
          state.centroidValues.subarray(i * dv, (i + 1) * dv),
          1e-12,
        );
      }
      expect(absorbed).toBe(state.tokensAbsorbed);
      expect(state.tokensAbsorbed).toBe(Math.floor(T / 8) * 8);
      expect(state.pendingCount).toBe(T % 8);
    });
  }
});

describe('reference: growth schedules', () => {
  it('saturating growth reaches n* = ⌊Nτ/(N+τ)⌋ and never exceeds capacity', () => {
    const seq = randomSeq(9, 512, 4, 2);
    const { trace, state } = ovqAttentionReference(seq, { chunkSize: 16, capacity: 20, beta: 1 });
    trace.forEach((r, j) => {
      const tau = (j + 1) * 16;
      const target = Math.min(20, tau, Math.max(1, Math.floor((20 * tau) / (20 + tau))));
      expect(r.sizeBefore + r.spawned.length).toBe(target);
    });
    expect(state.size).toBe(Math.floor((20 * 512) / 532));
  });

  it('lowering capacity below the size keeps the rows and stops spawning', () => {
    const config: OvqConfig = { chunkSize: 4, capacity: 10, beta: 1, growth: 'fixed' };
    const seq = randomSeq(2, 64, 3, 2);
    const state = createOvqState({ keyDim: 3, valueDim: 2 }, config);
    ovqAppend(state, {
      q: seq.q.subarray(0, 24),
      k: seq.k.subarray(0, 24),
      v: seq.v.subarray(0, 16),
      seqLen: 8,
    });
    expect(state.size).toBe(8);
    setOvqCapacity(state, 3);
    ovqAppend(state, {
      q: seq.q.subarray(24),
      k: seq.k.subarray(24),
      v: seq.v.subarray(16),
      seqLen: 56,
    });
    expect(state.size).toBe(8);
    expect(state.counts.reduce((a, b) => a + b, 0)).toBe(64);
  });

  it('farthest-point spawn picks the token farthest from the dictionary first', () => {
    // Two tight clusters plus one outlier: with one row already near cluster A, the outlier wins.
    const k = new Float64Array([1, 0, 1, 0.01, 0, 1, -1, 0]);
    const seq = {
      q: k.slice(),
      k,
      v: new Float64Array([1, 2, 3, 4]),
      seqLen: 4,
      keyDim: 2,
      valueDim: 1,
    };
    const { trace } = ovqAttentionReference(seq, {
      chunkSize: 2,
      capacity: 3,
      beta: 1,
      growth: 'fixed',
      normalize: false,
    });
    expect(trace[0].spawned).toEqual([0, 1]);
    expect(trace[1].spawned).toEqual([1]); // (-1,0) is farthest from rows (1,0) and (1,0.01)
  });
});

describe('reference: state serialization', () => {
  it('continues a stream identically after save and load', () => {
    const config: OvqConfig = { chunkSize: 5, capacity: 9, beta: 3, spawn: 'random', seed: 3 };
    const seq = randomSeq(21, 60, 4, 4);
    const whole = ovqAttentionReference(seq, config);
    const state = createOvqState({ keyDim: 4, valueDim: 4 }, config);
    const first = ovqAppend(state, {
      q: seq.q.subarray(0, 88),
      k: seq.k.subarray(0, 88),
      v: seq.v.subarray(0, 88),
      seqLen: 22,
    });
    const restored = deserializeOvqState(serializeOvqState(state), {
      keyDim: 4,
      valueDim: 4,
      config,
    });
    expect(restored.pendingCount).toBe(2);
    const second = ovqAppend(restored, {
      q: seq.q.subarray(88),
      k: seq.k.subarray(88),
      v: seq.v.subarray(88),
      seqLen: 38,
    });
    expect([...first, ...second]).toEqual([...whole.output]);
    expect(serializeOvqState(restored)).toEqual(serializeOvqState(whole.state));
  });
});
