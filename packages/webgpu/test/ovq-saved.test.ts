// The backward from a saved forward (`ovqForwardGpu`'s `save` + `ovqBackwardFromSavedGpu`, what
// the tfjs kernel runs) on every adapter present: bit for bit the gradients of `ovqBackwardGpu`
// (which runs the forward again and keeps its checkpoints), and against the @ovq/core float64
// reference with the GPU's verified decisions (plus float64 central differences of the
// reference's forward on one small case). Outputs NaN-poisoned, nothing left allocated.
import {
  createOvqState,
  type OvqConfig,
  ovqAppend,
  ovqAttentionReference as refAttention,
  ovqAttentionReferenceBackward as refBackward,
} from '@ovq/core';
import { assertClose, centralDifferences, dot } from '@ovq/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import type { GpuContext } from '../src/gpu/context.js';
import { decodeTrace, ovqAttentionBackward } from '../src/ovq/api.js';
import { backwardLimits, ovqBackwardFromSavedGpu } from '../src/ovq/backward.js';
import { ovqForwardGpu, ovqSavedShapes } from '../src/ovq/forward.js';
import { createGpuOvqState, uploadOvqState } from '../src/ovq/state.js';
import { present } from './adapters.js';
import { type Case, caseName, checkDecisions, headSeq, makeInput, TOL } from './ovq-helpers.js';
import { concat, head } from './reference.js';

const CASES: Case[] = [
  // A tail chunk, several checkpoint stretches (21 absorbs: every 5).
  { bh: 2, T: 150, dk: 8, dv: 12, config: { chunkSize: 7, capacity: 24, beta: 3 } },
  // No tail, no normalisation (q, k, v are the working buffers), first spawn, full growth.
  {
    bh: 2,
    T: 70,
    dk: 12,
    dv: 8,
    config: {
      chunkSize: 7,
      capacity: 40,
      beta: 2,
      spawn: 'first',
      growth: 'full',
      normalize: false,
    },
  },
  // EMA update, gaussian read, random spawn, log growth.
  {
    bh: 2,
    T: 130,
    dk: 8,
    dv: 8,
    config: {
      chunkSize: 8,
      capacity: 20,
      beta: 4,
      read: 'gaussian',
      spawn: 'random',
      seed: 4,
      growth: { kind: 'log', alpha: 4 },
      update: { kind: 'ema', rate: 0.3 },
    },
  },
  // Shorter than a chunk: no absorb at all.
  { bh: 2, T: 5, dk: 8, dv: 8, config: { chunkSize: 8, capacity: 8, beta: 3 } },
];

type Grads = { dq: Float32Array; dk: Float32Array; dv: Float32Array; dbetaPerHead: Float32Array };

/** Forward with `save`, then the backward from the saved tensors; everything read back. */
async function savedPath(
  ctx: GpuContext,
  input: ReturnType<typeof makeInput>,
  config: OvqConfig,
  dOut: Float32Array,
) {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = input;
  const dims = { batchHeads: bh, keyDim: dk, valueDim: dv };
  const live = ctx.liveTensors;
  const t = {
    q: ctx.upload(input.q, [bh, T, dk], 'f32', 'q'),
    k: ctx.upload(input.k, [bh, T, dk], 'f32', 'k'),
    v: ctx.upload(input.v, [bh, T, dv], 'f32', 'v'),
  };
  const dout = ctx.upload(dOut, [bh, T, dv], 'f32', 'dOutput');
  const shapes = ovqSavedShapes(dims, T, config.chunkSize);
  const saved = {
    output: ctx.output([bh, T, dv], 'f32', 'output'),
    lse: ctx.output(shapes.lse, 'f32', 'lse'),
    trace: ctx.output(shapes.trace, 'i32', 'trace'),
  };
  const grads = {
    dq: ctx.output([bh, T, dk], 'f32', 'dq'),
    dk: ctx.output([bh, T, dk], 'f32', 'dk'),
    dv: ctx.output([bh, T, dv], 'f32', 'dv'),
    dbeta: ctx.output([bh], 'f32', 'dbeta'),
  };
  const forwardState = createGpuOvqState(ctx, dims, config);
  const record = ovqForwardGpu(forwardState, { ...t, seqLen: T }, saved.output, {
    save: { lse: saved.lse, trace: saved.trace },
  });
  // The forward's own buffers and state are gone before the backward runs.
  ctx.disposeWhenDone(record.scope);
  forwardState.dispose();
  const before = { ...ctx.stats };
  const backwardState = createGpuOvqState(ctx, dims, config);
  ovqBackwardFromSavedGpu(backwardState, { ...t, seqLen: T }, saved, dout, grads);
  const dispatches = ctx.stats.dispatches - before.dispatches;
  backwardState.dispose();
  const result = {
    output: await ctx.readF32(saved.output),
    trace: decodeTrace(record, await ctx.readI32(saved.trace), bh, config.chunkSize),
    dq: await ctx.readF32(grads.dq),
    dk: await ctx.readF32(grads.dk),
    dv: await ctx.readF32(grads.dv),
    dbetaPerHead: await ctx.readF32(grads.dbeta),
    dispatches,
    forwardDispatches: record.dispatches.total,
  };
  await ctx.checkErrors();
  for (const x of [...Object.values(t), dout, ...Object.values(saved), ...Object.values(grads)]) {
    x.dispose();
  }
  await ctx.finish();
  await new Promise((r) => setTimeout(r, 0));
  expect(ctx.liveTensors, 'GPU buffers left allocated').toBe(live);
  return result;
}

function sameBits(name: string, a: Float32Array, b: Float32Array): void {
  expect(a.length, name).toBe(b.length);
  const i = a.findIndex((x, j) => !Object.is(x, b[j]));
  expect(i, `${name}[${i}]: ${a[i]} vs ${b[i]}`).toBe(-1);
}

it('ovqSavedShapes names a bad argument (e.g. a config that leaves chunkSize to its default)', () => {
  const dims = { batchHeads: 2, keyDim: 8, valueDim: 8 };
  expect(ovqSavedShapes(dims, 20, 8)).toEqual({ lse: [2, 20], trace: [2, 2, 49] });
  expect(() => ovqSavedShapes(dims, 20, undefined as unknown as number)).toThrow(
    /chunkSize: got undefined; expected a positive integer/,
  );
  expect(() => ovqSavedShapes(dims, -1, 8)).toThrow(/seqLen: got -1; expected a non-negative/);
  expect(() => ovqSavedShapes({ ...dims, batchHeads: 0 }, 20, 8)).toThrow(/batchHeads: got 0/);
});

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`OVQ backward from a saved forward on ${adapter.description}`, () => {
    const ctx = adapter.ctx!;
    const defaultStretch = backwardLimits.stretchBytes;
    afterEach(() => {
      backwardLimits.stretchBytes = defaultStretch;
    });

    /**
     * CASES[3]'s tensors for a saved backward (allocated, left unfilled) after a real saved forward
     * wrote `saved` (the backward refuses saved tensors no saved forward wrote); `make` allocates
     * more, and `dispose` frees them all.
     */
    function savedCall() {
      const c = CASES[3];
      const { bh, T, dk, dv } = c;
      const dims = { batchHeads: bh, keyDim: dk, valueDim: dv };
      const shapes = ovqSavedShapes(dims, T, c.config.chunkSize);
      const made: ReturnType<GpuContext['tensor']>[] = [];
      const make = (shape: number[], dtype: 'f32' | 'i32' = 'f32') => {
        const x = ctx.tensor(shape, dtype);
        made.push(x);
        return x;
      };
      const input = { q: make([bh, T, dk]), k: make([bh, T, dk]), v: make([bh, T, dv]), seqLen: T };
      const grads = {
        dq: make([bh, T, dk]),
        dk: make([bh, T, dk]),
        dv: make([bh, T, dv]),
        dbeta: make([bh]),
      };
      const dout = make([bh, T, dv]);
      const saved = {
        output: make([bh, T, dv]),
        lse: make(shapes.lse),
        trace: make(shapes.trace, 'i32'),
      };
      const forwardState = createGpuOvqState(ctx, dims, c.config);
      ctx.disposeWhenDone(
        ovqForwardGpu(forwardState, input, saved.output, {
          save: { lse: saved.lse, trace: saved.trace },
        }).scope,
      );
      forwardState.dispose();
      const dispose = () => {
        for (const x of made) x.dispose();
      };
      return { c, dims, shapes, make, input, grads, dout, saved, dispose };
    }

    it.each(CASES.map((c) => [caseName(c), c] as const))(
      'equals the backward that re-runs the forward (bits) and the reference: %s',
      async (_name, c) => {
        const input = makeInput(410, c);
        const dOut = Float32Array.from(makeInput(411, c).v);
        const again: Grads = await ovqAttentionBackward(ctx, input, c.config, dOut);
        const saved = await savedPath(ctx, input, c.config, dOut);
        for (const key of ['dq', 'dk', 'dv', 'dbetaPerHead'] as const) {
          sameBits(key, again[key], saved[key]);
        }
        checkDecisions(input, c.config, saved.trace);
        const ref = Array.from({ length: c.bh }, (_, h) =>
          refBackward(headSeq(input, h, c.T, c.dk, c.dv), c.config, head(dOut, h, c.T, c.dv), {
            replay: saved.trace[h],
          }),
        );
        assertClose('dq', concat(ref.map((r) => r.dq)), saved.dq, TOL);
        assertClose('dk', concat(ref.map((r) => r.dk)), saved.dk, TOL);
        assertClose('dv', concat(ref.map((r) => r.dv)), saved.dv, TOL);
        assertClose(
          'dbeta',
          ref.map((r) => r.dbeta),
          saved.dbetaPerHead,
          TOL,
        );
      },
    );

    it('with fewer kept dictionaries than a stretch (memory budget) the bits stay the same', async () => {
      const c = CASES[0];
      const input = makeInput(420, c);
      const dOut = Float32Array.from(makeInput(421, c).v);
      const full = await savedPath(ctx, input, c.config, dOut);
      // Two kept dictionaries per stretch of five: the first absorbs are replayed more often.
      const slot = c.bh * 24 * (c.dk + c.dv + 1) * 4;
      backwardLimits.stretchBytes = 3 * slot;
      const small = await savedPath(ctx, input, c.config, dOut);
      for (const key of ['dq', 'dk', 'dv', 'dbetaPerHead'] as const) {
        sameBits(key, full[key], small[key]);
      }
      expect(small.dispatches).toBeGreaterThan(full.dispatches);
    });

    it('matches float64 central differences of the reference forward (decisions fixed)', async () => {
      const c: Case = {
        bh: 1,
        T: 20,
        dk: 4,
        dv: 4,
        config: { chunkSize: 4, capacity: 6, beta: 2 },
      };
      const input = makeInput(430, c);
      const dOut = Float32Array.from(makeInput(431, c).v);
      const gpu = await savedPath(ctx, input, c.config, dOut);
      const trace = gpu.trace[0];
      checkDecisions(input, c.config, gpu.trace);
      const x = {
        q: Float64Array.from(input.q),
        k: Float64Array.from(input.k),
        v: Float64Array.from(input.v),
        beta: Float64Array.of(2),
      };
      const loss = () => {
        const seq = { q: x.q, k: x.k, v: x.v, seqLen: c.T, keyDim: c.dk, valueDim: c.dv };
        const config = { ...c.config, beta: x.beta[0] };
        return dot(dOut, refAttention(seq, config, { replay: trace }).output);
      };
      // A few hundred float64 evaluations: tolerance covers the GPU's float32.
      assertClose('dq', centralDifferences(loss, x.q), gpu.dq, 1e-3);
      assertClose('dk', centralDifferences(loss, x.k), gpu.dk, 1e-3);
      assertClose('dv', centralDifferences(loss, x.v), gpu.dv, 1e-3);
      assertClose('dbeta', centralDifferences(loss, x.beta), gpu.dbetaPerHead, 1e-3);
    });

    it('dispatches less than the backward that runs the forward again', async () => {
      const c = CASES[0];
      const input = makeInput(440, c);
      const dOut = Float32Array.from(makeInput(441, c).v);
      const before = ctx.stats.dispatches;
      await ovqAttentionBackward(ctx, input, c.config, dOut);
      const again = ctx.stats.dispatches - before;
      const saved = await savedPath(ctx, input, c.config, dOut);
      // Replaying the decisions (two dispatches per absorb) replaces the forward's reads and
      // absorbs, its copies, combines and checkpoints.
      expect(saved.dispatches).toBeLessThan(again);
    });

    it('surfaces GPU errors: an earlier one on the call, its own submits through checkErrors', async () => {
      const { c, dims, input, grads, dout, saved, dispose } = savedCall();
      const settle = async () => {
        await ctx.device.queue.onSubmittedWorkDone();
        for (let i = 0; i < 200 && ctx.pendingErrorScopes > 0; i++)
          await new Promise((r) => setTimeout(r, 5));
      };
      const state = createGpuOvqState(ctx, dims, c.config);
      try {
        ctx.trackErrors(
          () =>
            ctx.device.createBuffer({
              size: 4,
              usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE,
            }),
          'an earlier submit',
        );
        await settle();
        expect(() => ovqBackwardFromSavedGpu(state, input, saved, dout, grads)).toThrow(
          /gpu: WebGPU reported an error: an earlier submit: /,
        );
        // A buffer destroyed behind the tensor's back: the backward's own submit fails on the GPU.
        saved.lse.buffer.destroy();
        ovqBackwardFromSavedGpu(state, input, saved, dout, grads);
        await expect(ctx.checkErrors()).rejects.toThrow(/gpu: WebGPU reported an error: submit/);
        await expect(ctx.checkErrors()).resolves.toBeUndefined();
      } finally {
        state.dispose();
        dispose();
      }
    });

    it('refuses to save a forward that does not start from an empty state', () => {
      // 3 pending tokens + 5 new ones make one absorb, as 5 tokens from empty would (the saved
      // shapes agree): without the check the backward would replay these decisions from the
      // empty dictionary with chunks shifted by 3 tokens and give wrong gradients silently.
      const bh = 2;
      const [T, dk, dv] = [5, 8, 8];
      const config = { chunkSize: 8, capacity: 8, beta: 3 };
      const dims = { batchHeads: bh, keyDim: dk, valueDim: dv };
      const shapes = ovqSavedShapes(dims, T, config.chunkSize);
      const heads = Array.from({ length: bh }, () => {
        const s = createOvqState({ keyDim: dk, valueDim: dv }, config);
        const x = makeInput(412, { bh: 1, T: 3, dk, dv, config });
        ovqAppend(s, { q: x.q, k: x.k, v: x.v, seqLen: 3 });
        return s;
      });
      const state = uploadOvqState(ctx, heads);
      const made = [
        ctx.tensor([bh, T, dk]),
        ctx.tensor([bh, T, dk]),
        ctx.tensor([bh, T, dv]),
        ctx.tensor([bh, T, dv]),
        ctx.tensor(shapes.lse),
        ctx.tensor(shapes.trace, 'i32'),
      ];
      const [q, k, v, out, lse, trace] = made;
      try {
        expect(state.pendingCount).toBe(3);
        expect(() =>
          ovqForwardGpu(state, { q, k, v, seqLen: T }, out, { save: { lse, trace } }),
        ).toThrow(
          /options\.save: the state has seen 3 tokens; a saved forward starts from an empty state/,
        );
        expect(state.tokensSeen, 'the refused call changed the state').toBe(3);
      } finally {
        state.dispose();
        for (const x of made) x.dispose();
      }
    });

    it('refuses saved tensors paired with another config, other inputs, or no saved forward', () => {
      // Same shapes throughout: only what the forward ran with tells them apart. Without the
      // check, decisions made at capacity 8 replayed at capacity 4 index rows past the dictionary.
      const { c, dims, shapes, make, input, grads, dout, saved, dispose } = savedCall();
      const { batchHeads: bh, keyDim: dk, valueDim: dv } = dims;
      const T = input.seqLen;
      const states = [
        createGpuOvqState(ctx, dims, c.config),
        createGpuOvqState(ctx, dims, { ...c.config, capacity: c.config.capacity / 2 }),
        createGpuOvqState(ctx, dims, { ...c.config, beta: c.config.beta + 1 }),
      ];
      const [same, smaller, otherBeta] = states;
      try {
        const run = (state: typeof same, i = input, s = saved) =>
          ovqBackwardFromSavedGpu(state, i, s, dout, grads);
        expect(() => run(smaller)).toThrow(/^saved: was saved by a forward with .*"capacity":8/);
        expect(() => run(otherBeta)).toThrow(/^saved: was saved by a forward with/);
        expect(() => run(same, { ...input, q: make([bh, T, dk]) })).toThrow(
          /^q: is not the buffer the saved forward used for q/,
        );
        expect(() => run(same, input, { ...saved, output: make([bh, T, dv]) })).toThrow(
          /^saved\.output: is not the buffer/,
        );
        expect(() => run(same, input, { ...saved, trace: make(shapes.trace, 'i32') })).toThrow(
          /^saved\.trace: was not written by ovqForwardGpu with options\.save/,
        );
        // The matching pairing runs.
        expect(() => run(same)).not.toThrow();
      } finally {
        for (const s of states) s.dispose();
        dispose();
      }
    });

    it('rejects saved tensors of the wrong shape or dtype, naming them', () => {
      const { c, dims, shapes, make, input, grads, dout, saved: good, dispose } = savedCall();
      const { batchHeads: bh, valueDim: dv } = dims;
      const T = input.seqLen;
      const state = createGpuOvqState(ctx, dims, c.config);
      try {
        const run = (saved: typeof good) =>
          ovqBackwardFromSavedGpu(state, input, saved, dout, grads);
        expect(() => run({ ...good, trace: make(shapes.trace) })).toThrow(
          /saved\.trace.*dtype f32; expected i32/,
        );
        expect(() => run({ ...good, lse: make([bh, T + 1]) })).toThrow(/saved\.lse.*expected/);
        expect(() => run({ ...good, output: make([bh, T, dv + 1]) })).toThrow(/saved\.output/);
      } finally {
        state.dispose();
        dispose();
      }
    });
  });
}
