// Gated DeltaNet kernels on every adapter present against the float64 @ovq/baselines reference:
// outputs, final states and all five gradients (RMS ratio ≤ 1e-4), with NaN-poisoned outputs and
// scratch, across chunk boundaries (C = 64), dk ≠ dv, dv wider than a workgroup, zero rows (the
// normalisation's eps floor), T = 0, and argument errors.

import {
  gatedDeltaNetBackward as referenceBackward,
  gatedDeltaNet as referenceForward,
} from '@ovq/baselines';
import { assertClose, randomSeq } from '@ovq/core/testing';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import { describe, expect, it } from 'vitest';
import { TensorScope } from '../src/gpu/tensor.js';
import {
  type GatedDeltaNetInput,
  gatedDeltaNetBackward,
  gatedDeltaNetBackwardGpu,
  gatedDeltaNetForward,
  gatedDeltaNetForwardGpu,
} from '../src/ops/gated-deltanet.js';
import { present } from './adapters.js';
import { concat, head } from './reference.js';

const TOL = 1e-4;

type Case = {
  bh: number;
  T: number;
  dk: number;
  dv: number;
  scale?: number;
  /** Tokens whose q and k rows are zeroed (the normalisation's eps branch). */
  zeroRows?: number[];
};

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

function makeInput(seed: number, c: Case): GatedDeltaNetInput {
  const parts = Array.from({ length: c.bh }, (_, h) => {
    const seq = randomSeq(seed + h, c.T, c.dk, c.dv);
    const gates = randomSeq(seed + 100 + h, c.T, 2, 1).q;
    for (const t of c.zeroRows ?? []) {
      seq.q.fill(0, t * c.dk, (t + 1) * c.dk);
      seq.k.fill(0, t * c.dk, (t + 1) * c.dk);
    }
    return {
      ...seq,
      // α ∈ (0.5, 1) (long memory, as trained models), β ∈ (0, 2).
      alpha: Float64Array.from({ length: c.T }, (_, t) => 0.5 + 0.5 * sigmoid(gates[2 * t])),
      beta: Float64Array.from({ length: c.T }, (_, t) => 2 * sigmoid(gates[2 * t + 1])),
    };
  });
  const f32 = (key: 'q' | 'k' | 'v' | 'alpha' | 'beta') =>
    Float32Array.from(concat(parts.map((p) => p[key])));
  return {
    q: f32('q'),
    k: f32('k'),
    v: f32('v'),
    alpha: f32('alpha'),
    beta: f32('beta'),
    batchHeads: c.bh,
    seqLen: c.T,
    keyDim: c.dk,
    valueDim: c.dv,
  };
}

/** The reference per head, fed the same float32-rounded inputs as the kernels. */
function reference(input: GatedDeltaNetInput, dOut: Float32Array, scale: number | undefined) {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = input;
  const config = scale === undefined ? undefined : { scale };
  const heads = Array.from({ length: bh }, (_, h) => {
    const seq = {
      q: head(input.q, h, T, dk),
      k: head(input.k, h, T, dk),
      v: head(input.v, h, T, dv),
      alpha: head(input.alpha, h, T, 1),
      beta: head(input.beta, h, T, 1),
      seqLen: T,
      keyDim: dk,
      valueDim: dv,
    };
    const fwd = referenceForward(seq, config);
    return { fwd, grad: referenceBackward(seq, config, head(dOut, h, T, dv)) };
  });
  return {
    output: concat(heads.map((r) => r.fwd.output)),
    state: concat(heads.map((r) => r.fwd.state.kv)),
    dq: concat(heads.map((r) => r.grad.dq)),
    dk: concat(heads.map((r) => r.grad.dk)),
    dv: concat(heads.map((r) => r.grad.dv)),
    dAlpha: concat(heads.map((r) => r.grad.dAlpha)),
    dBeta: concat(heads.map((r) => r.grad.dBeta)),
  };
}

/** The [BH, T, dk] rows of `x` whose token is (or, with `zero` false, is not) in c.zeroRows. */
function keyRows(x: ArrayLike<number>, c: Case, zero: boolean): number[] {
  const out: number[] = [];
  for (let r = 0; r < c.bh * c.T; r++) {
    if ((c.zeroRows ?? []).includes(r % c.T) !== zero) continue;
    for (let i = 0; i < c.dk; i++) out.push(x[r * c.dk + i]);
  }
  return out;
}

const CASES: Case[] = [
  { bh: 2, T: 1, dk: 64, dv: 64 },
  { bh: 3, T: 63, dk: 60, dv: 64 },
  { bh: 2, T: 200, dk: 32, dv: 16 },
  { bh: 1, T: 130, dk: 128, dv: 130 },
  { bh: 2, T: 70, dk: 5, dv: 3, scale: 0.7, zeroRows: [0, 64, 69] },
];

const caseName = (c: Case) =>
  `BH${c.bh}-T${c.T}-DK${c.dk}-DV${c.dv}${c.scale ? `-scale${c.scale}` : ''}${c.zeroRows ? '-zero rows' : ''}`;

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`gated deltanet on ${adapter.description}`, () => {
    const ctx = adapter.ctx!;

    it.each(CASES.map((c) => [caseName(c), c] as const))(
      'forward + backward %s',
      async (_, c) => {
        const input = makeInput(7, c);
        const dOut = Float32Array.from(randomSeq(99, c.bh * c.T, c.dv, 1).q);
        const config = c.scale === undefined ? undefined : { scale: c.scale };
        const ref = reference(input, dOut, c.scale);
        const fwd = await gatedDeltaNetForward(ctx, input, config);
        assertClose('output', ref.output, fwd.output, TOL);
        assertClose('final state', ref.state, fwd.state, TOL);
        const grads = await gatedDeltaNetBackward(ctx, input, config, dOut);
        // The eps rows' gradients are ~1e12 times larger: compare them apart from the others.
        for (const zero of c.zeroRows ? [false, true] : [false]) {
          const pick = (x: ArrayLike<number>) => keyRows(x, c, zero);
          assertClose(`dq${zero ? ' (zero rows)' : ''}`, pick(ref.dq), pick(grads.dq), TOL);
          assertClose(`dk${zero ? ' (zero rows)' : ''}`, pick(ref.dk), pick(grads.dk), TOL);
        }
        assertClose('dv', ref.dv, grads.dv, TOL);
        assertClose('dAlpha', ref.dAlpha, grads.dAlpha, TOL);
        assertClose('dBeta', ref.dBeta, grads.dBeta, TOL);
      },
      SLOW_TEST_TIMEOUT_MS,
    );

    it('T = 0 gives empty outputs and a zero state', async () => {
      const input = makeInput(1, { bh: 2, T: 0, dk: 8, dv: 4 });
      const fwd = await gatedDeltaNetForward(ctx, input);
      expect(fwd.output.length).toBe(0);
      expect(Array.from(fwd.state)).toEqual(new Array(2 * 8 * 4).fill(0));
      const grads = await gatedDeltaNetBackward(ctx, input, undefined, new Float32Array(0));
      expect(
        [grads.dq, grads.dk, grads.dv, grads.dAlpha, grads.dBeta].map((g) => g.length),
      ).toEqual([0, 0, 0, 0, 0]);
    });

    it('the same inputs give the same bits twice', async () => {
      const c = { bh: 2, T: 70, dk: 16, dv: 8 };
      const input = makeInput(3, c);
      const dOut = Float32Array.from(randomSeq(5, c.bh * c.T, c.dv, 1).q);
      const a = await gatedDeltaNetBackward(ctx, input, undefined, dOut);
      const b = await gatedDeltaNetBackward(ctx, input, undefined, dOut);
      expect(Array.from(b.dk)).toEqual(Array.from(a.dk));
      expect(Array.from(b.dAlpha)).toEqual(Array.from(a.dAlpha));
    });

    it('bad arguments throw errors naming them', async () => {
      const c = { bh: 2, T: 10, dk: 8, dv: 4 };
      const input = makeInput(2, c);
      const dims = { batchHeads: 2, seqLen: 10, keyDim: 8, valueDim: 4 };
      await expect(
        gatedDeltaNetForward(ctx, { ...input, alpha: input.alpha.subarray(1) }),
      ).rejects.toThrow(/alpha: has 19 values; expected batchHeads\*seqLen = 2\*10 = 20/);
      await expect(gatedDeltaNetForward(ctx, input, { scale: -1 })).rejects.toThrow(
        /config.scale: got -1/,
      );
      await expect(gatedDeltaNetForward(ctx, { ...input, keyDim: 0 })).rejects.toThrow(/keyDim/);
      await expect(
        gatedDeltaNetBackward(ctx, input, undefined, new Float32Array(7)),
      ).rejects.toThrow(/dOutput: has 7 values/);
      const scope = new TensorScope();
      try {
        const t = (shape: number[], label: string) => scope.track(ctx.tensor(shape, 'f32', label));
        const tensors = {
          q: t([2, 10, 8], 'q'),
          k: t([2, 10, 8], 'k'),
          v: t([2, 10, 4], 'v'),
          alpha: t([2, 10], 'alpha'),
          beta: t([2, 9], 'beta'),
          out: t([2, 10, 4], 'out'),
        };
        expect(() => gatedDeltaNetForwardGpu(ctx, dims, undefined, tensors)).toThrow(
          /beta: has shape \[2, 9\]/,
        );
        const ok = { ...tensors, beta: t([2, 10], 'beta') };
        expect(() =>
          gatedDeltaNetForwardGpu(ctx, dims, undefined, { ...ok, states: t([2, 1, 8, 4], 's') }),
        ).toThrow(/states: has shape \[2, 1, 8, 4\]/);
        ok.v.dispose();
        expect(() => gatedDeltaNetForwardGpu(ctx, dims, undefined, ok)).toThrow(/v: was disposed/);
        const grads = {
          dq: t([2, 10, 8], 'dq'),
          dk: t([2, 10, 8], 'dk'),
          dv: t([2, 10, 4], 'dv'),
          dAlpha: t([2, 10], 'dAlpha'),
          dBeta: t([2, 10, 1], 'dBeta2'),
        };
        expect(() =>
          gatedDeltaNetBackwardGpu(
            ctx,
            dims,
            undefined,
            { ...ok, v: t([2, 10, 4], 'v'), dOutput: t([2, 10, 4], 'dy') },
            { ...grads, dAlpha: t([2, 11], 'dAlpha') },
          ),
        ).toThrow(/dAlpha: has shape \[2, 11\]/);
      } finally {
        scope.dispose();
      }
    });
  });
}
