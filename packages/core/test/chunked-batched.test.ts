// The batched multi-head form equals a loop over heads of the one-head chunked path (bit for bit:
// same kernels, one reused workspace), forward and backward, with and without initial states.
import { describe, expect, it } from 'vitest';
import {
  type BatchedSeq,
  ovqAttention,
  ovqAttentionBackward,
  ovqAttentionBatched,
  ovqAttentionBatchedBackward,
} from '../src/chunked/index.js';
import type { OvqState } from '../src/ovq/state.js';
import type { Seq } from '../src/ovq/types.js';
import { assertClose, createRng, poisoned, randn } from '../src/testing/index.js';
import { expectSameState, OPTION_CASES, sliceSeq } from './chunked-support.js';

function randomBatch(
  seed: number,
  batch: number,
  heads: number,
  T: number,
  dk: number,
  dv: number,
): BatchedSeq {
  const rng = createRng(seed);
  const H = batch * heads;
  return {
    q: Float32Array.from(randn(rng, H * T * dk)),
    k: Float32Array.from(randn(rng, H * T * dk)),
    v: Float32Array.from(randn(rng, H * T * dv)),
    batch,
    heads,
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
  };
}

/** Head (b, h) as a one-head sequence: entry b·heads + h of the [batch, heads, …] layout. */
function headOf(x: BatchedSeq, index: number): Seq {
  const { seqLen: T, keyDim: dk, valueDim: dv } = x;
  return {
    q: x.q.slice(index * T * dk, (index + 1) * T * dk),
    k: x.k.slice(index * T * dk, (index + 1) * T * dk),
    v: x.v.slice(index * T * dv, (index + 1) * T * dv),
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
  };
}

describe('batched = per-head loop', () => {
  for (const [name, options] of OPTION_CASES.filter(([n]) =>
    ['default', 'ema0.3', 'random-gaussian-ema', 'novelty'].includes(n),
  )) {
    it(`${name}-B2-H3-T100-dk12-dv5-C16`, () => {
      const x = randomBatch(1, 2, 3, 100, 12, 5);
      const config = { chunkSize: 16, capacity: 12, beta: 3, ...options };
      const H = 6;
      const out = poisoned(H * 100 * 5);
      const batched = ovqAttentionBatched(x, config, { out });
      expect(batched.output).toBe(out);
      const dOutput = randn(createRng(2), H * 100 * 5);
      const grads = ovqAttentionBatchedBackward(x, config, dOutput, {
        out: { dq: poisoned(H * 100 * 12), dk: poisoned(H * 100 * 12), dv: poisoned(H * 100 * 5) },
      });
      let dbeta = 0;
      for (let h = 0; h < H; h++) {
        const seq = headOf(x, h);
        const one = ovqAttention(seq, config);
        expect(Array.from(batched.output.subarray(h * 500, (h + 1) * 500))).toEqual(
          Array.from(one.output),
        );
        expectSameState(`head ${h}`, one.state, batched.states[h], 0);
        expect(batched.traces[h]).toEqual(one.trace);
        const g = ovqAttentionBackward(seq, config, dOutput.subarray(h * 500, (h + 1) * 500));
        expect(Array.from(grads.dq.subarray(h * 1200, (h + 1) * 1200))).toEqual(Array.from(g.dq));
        expect(Array.from(grads.dk.subarray(h * 1200, (h + 1) * 1200))).toEqual(Array.from(g.dk));
        expect(Array.from(grads.dv.subarray(h * 500, (h + 1) * 500))).toEqual(Array.from(g.dv));
        expect(grads.dbetaPerHead[h]).toBe(g.dbeta);
        dbeta += g.dbeta;
      }
      assertClose('dbeta', [dbeta], [grads.dbeta], 1e-12);
    });
  }

  it('continues per-head states (B1-H2-T90 in two calls)', () => {
    const x = randomBatch(3, 1, 2, 90, 6, 4);
    const config = { chunkSize: 7, capacity: 10, beta: 2 };
    const whole = ovqAttentionBatched(x, config);
    const part = (from: number, to: number): BatchedSeq => {
      const heads = [0, 1].map((h) => sliceSeq(headOf(x, h), from, to));
      const cat = (f: 'q' | 'k' | 'v') => Float32Array.from([...heads[0][f], ...heads[1][f]]);
      return { ...x, q: cat('q'), k: cat('k'), v: cat('v'), seqLen: to - from };
    };
    const first = ovqAttentionBatched(part(0, 40), config);
    const states: OvqState[] = first.states;
    const second = ovqAttentionBatched(part(40, 90), config, { states });
    for (let h = 0; h < 2; h++) {
      const joined = new Float32Array(90 * 4);
      joined.set(first.output.subarray(h * 160, (h + 1) * 160), 0);
      joined.set(second.output.subarray(h * 200, (h + 1) * 200), 160);
      assertClose(`head ${h}`, whole.output.subarray(h * 360, (h + 1) * 360), joined, 1e-6);
      expectSameState(`head ${h}`, whole.states[h], second.states[h], 1e-6);
    }
  });

  it('names the bad argument', () => {
    const x = randomBatch(4, 2, 2, 5, 3, 3);
    expect(() =>
      ovqAttentionBatched({ ...x, heads: 3 }, { chunkSize: 2, capacity: 4, beta: 1 }),
    ).toThrow(/input.q: has 60 values; expected batch\*heads\*seqLen\*keyDim = 90/);
    expect(() =>
      ovqAttentionBatched(x, { chunkSize: 2, capacity: 4, beta: 1 }, { states: [] }),
    ).toThrow(/options.states: got 0 states; expected an array of batch\*heads = 4 OvqStates/);
  });
});
