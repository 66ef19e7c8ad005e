// The README example, run as written (so the documentation cannot rot).
import { describe, expect, it } from 'vitest';
import {
  createGatedDeltaNetState,
  deserializeGatedDeltaNetState,
  gatedDeltaNet,
  gatedDeltaNetAppend,
  gatedDeltaNetChunked,
  serializeGatedDeltaNetState,
  stateSize,
} from '../src/index.js';
import { assertClose } from './helpers.js';

describe('README example', () => {
  it('runs and its claims hold', () => {
    const T = 100;
    const keyDim = 16;
    const valueDim = 8;
    const rand = (n: number) => Float64Array.from({ length: n }, () => Math.random() - 0.5);
    const seq = {
      q: rand(T * keyDim),
      k: rand(T * keyDim),
      v: rand(T * valueDim),
      seqLen: T,
      keyDim,
      valueDim,
      alpha: new Float64Array(T).fill(0.95),
      beta: new Float64Array(T).fill(0.5),
    };
    const exact = gatedDeltaNet(seq).output;
    const fast = gatedDeltaNetChunked(seq).output;
    const state = createGatedDeltaNetState({ keyDim, valueDim });
    const piece = (a: number, b: number) => ({
      ...seq,
      seqLen: b - a,
      q: seq.q.slice(a * keyDim, b * keyDim),
      k: seq.k.slice(a * keyDim, b * keyDim),
      v: seq.v.slice(a * valueDim, b * valueDim),
      alpha: seq.alpha.slice(a, b),
      beta: seq.beta.slice(a, b),
    });
    const first = gatedDeltaNetAppend(state, piece(0, 40));
    const restored = deserializeGatedDeltaNetState(serializeGatedDeltaNetState(state));
    const second = gatedDeltaNetAppend(restored, piece(40, T));
    assertClose('fast', exact, fast, 1e-5);
    assertClose('streamed', exact, [...first, ...second], 1e-12);
    expect(stateSize('gated-deltanet', { keyDim, valueDim }, {}, T)).toBe(128);
  });
});
