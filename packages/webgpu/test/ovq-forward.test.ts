// OVQ forward on every adapter present against the @ovq/core float64 reference: outputs and the
// final state (size, counts, rows, pending buffer), NaN-poisoned outputs, odd shapes, every
// option, determinism and streaming splits.
import { ovqAppend as refAppend, serializeOvqState } from '@ovq/core';
import { assertClose, createRng, randn } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import { TensorScope } from '../src/gpu/tensor.js';
import { ovqAppend, ovqAttention } from '../src/ovq/api.js';
import { ovqForwardGpu, ovqReadPassGpu } from '../src/ovq/forward.js';
import { createGpuOvqState, readOvqState, uploadOvqState } from '../src/ovq/state.js';
import { present } from './adapters.js';
import {
  type Case,
  caseName,
  checkDecisions,
  compareStates,
  headSeq,
  makeInput,
  reference,
  TOL,
} from './ovq-helpers.js';

const CASES: Case[] = [
  { bh: 3, T: 1, dk: 64, dv: 64, config: { chunkSize: 7, capacity: 8, beta: 4 } },
  {
    bh: 3,
    T: 63,
    dk: 60,
    dv: 64,
    config: { chunkSize: 7, capacity: 16, beta: 5, read: 'gaussian' },
  },
  { bh: 3, T: 500, dk: 64, dv: 60, config: { chunkSize: 64, capacity: 32, beta: 6 } },
  {
    bh: 3,
    T: 500,
    dk: 60,
    dv: 64,
    config: {
      chunkSize: 7,
      capacity: 24,
      beta: 3,
      spawn: 'random',
      seed: 5,
      growth: { kind: 'log', alpha: 4 },
      update: { kind: 'ema', rate: 0.3 },
    },
  },
  {
    bh: 3,
    T: 63,
    dk: 64,
    dv: 64,
    config: { chunkSize: 7, capacity: 64, beta: 8, spawn: 'first', growth: 'full' },
  },
  {
    bh: 2,
    T: 300,
    dk: 32,
    dv: 16,
    // Saturating toward 6 of 20 rows: the schedule stops early and the rows above stay unused.
    config: { chunkSize: 8, capacity: 20, beta: 4, growth: { kind: 'saturating', rows: 6 } },
  },
];

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`OVQ forward on ${adapter.description}`, () => {
    const ctx = adapter.ctx!;

    it.each(CASES.map((c) => [caseName(c), c] as const))(
      'matches the reference: %s',
      async (_name, c) => {
        const input = makeInput(100, c);
        const gpu = await ovqAttention(ctx, input, c.config);
        const ref = reference(input, c.config, gpu.trace);
        if (ref.ties > 0)
          console.info(`[${caseName(c)}] ${ref.ties} absorb decisions are float64 near-ties`);
        assertClose('output', ref.output, gpu.output, TOL);
        compareStates(ref.states, gpu.state);
      },
    );

    it('is deterministic: two runs give identical bits', async () => {
      const c = CASES[2];
      const input = makeInput(7, c);
      const a = await ovqAttention(ctx, input, c.config);
      const b = await ovqAttention(ctx, input, c.config);
      expect(Buffer.from(a.output.buffer).equals(Buffer.from(b.output.buffer))).toBe(true);
      expect(a.trace).toEqual(b.trace);
      a.state.forEach((s, h) => {
        expect(
          Buffer.from(new Float64Array(s.centroidKeys).buffer).equals(
            Buffer.from(new Float64Array(b.state[h].centroidKeys).buffer),
          ),
        ).toBe(true);
      });
    });

    it('N = 16384 rows, dk = dv = 128: appends, and the 2-D checkpoint dispatch copies every row', async () => {
      // 16384 · 257 / 64 = 65,792 workgroups for a per-row-element kernel (over the 65,535 limit):
      // the update is sized by touched rows, the checkpoint/pack kernels use a 2-D grid. The state
      // is uploaded full (no spawns), one chunk is appended and checked against float64.
      const N = 16384;
      const d = 128;
      const rng = createRng(16);
      const config = { chunkSize: 64, capacity: N, beta: 8 };
      const keys = randn(rng, N * d);
      for (let i = 0; i < N; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += keys[i * d + j] ** 2;
        for (let j = 0; j < d; j++) keys[i * d + j] /= Math.sqrt(s);
      }
      const cpu = createOvqState({ keyDim: d, valueDim: d }, config, {
        counts: new Float64Array(N).fill(1),
        centroidKeys: Float32Array.from(keys),
        centroidValues: Float32Array.from(randn(rng, N * d)),
        tokensSeen: N,
      });
      const state = uploadOvqState(ctx, [cpu]);
      try {
        const q = Float32Array.from(randn(rng, 64 * d));
        const k = Float32Array.from(randn(rng, 64 * d));
        const v = Float32Array.from(randn(rng, 64 * d));
        const gpu = await ovqAppend(state, { q, k, v, seqLen: 64 });
        const ref = cpu.clone();
        const refOut = refAppend(ref, { q, k, v, seqLen: 64 });
        assertClose('output', refOut, gpu.output, TOL);
        const before = (await readOvqState(state))[0];
        compareStates([ref], [before]);
        // A GPU-level forward keeping checkpoints: slot 0 holds the dictionary before its absorb.
        const scope = new TensorScope();
        const t = (x: Float32Array) => scope.track(ctx.upload(x, [1, 64, d]));
        const out = scope.track(ctx.tensor([1, 64, d]));
        const record = ovqForwardGpu(state, { q: t(q), k: t(v), v: t(k), seqLen: 64 }, out, {
          keepCheckpoints: true,
        });
        const cp = await ctx.readF32(record.checkpoints!.tensor);
        record.scope.dispose();
        scope.dispose();
        const W = 2 * d + 1;
        // OvqState's getters return copies: take each once.
        const { centroidKeys: rowKeys, centroidValues: rowValues, counts } = before;
        let wrong = 0;
        for (let i = 0; i < N; i++) {
          for (let j = 0; j < d; j++) {
            if (cp[i * W + j] !== Math.fround(rowKeys[i * d + j])) wrong++;
            if (cp[i * W + d + j] !== Math.fround(rowValues[i * d + j])) wrong++;
          }
          if (cp[i * W + 2 * d] !== counts[i]) wrong++;
        }
        expect(wrong, 'checkpoint entries differing from the dictionary').toBe(0);
      } finally {
        state.dispose();
      }
    }, 300_000);

    it('the decision check rejects a trace that is not float64-optimal (every token to row 0)', async () => {
      const c = CASES[2];
      const input = makeInput(100, c);
      const gpu = await ovqAttention(ctx, input, c.config);
      expect(checkDecisions(input, c.config, gpu.trace).decisions).toBeGreaterThan(0);
      const bad = gpu.trace.map((t) =>
        t.map((r) => ({
          ...r,
          assignment: r.assignment.map((row, j) => (r.spawned.includes(j) ? row : 0)),
        })),
      );
      expect(() => checkDecisions(input, c.config, bad)).toThrow(/not a tie/);
    });

    it('the read pass alone (benchmark aid) repeats the forward reads on a final dictionary', async () => {
      // T in (C, 2C): chunk 0 reads no rows and chunk 1 the rows the single absorb left, so a
      // read pass against the final dictionary must reproduce the forward's output bits.
      const c: Case = {
        bh: 3,
        T: 11,
        dk: 60,
        dv: 64,
        config: { chunkSize: 7, capacity: 4, beta: 5 },
      };
      const input = makeInput(40, c);
      const state = createGpuOvqState(ctx, input, c.config);
      const scope = new TensorScope();
      try {
        const t = {
          q: scope.track(ctx.upload(input.q, [3, 11, 60], 'f32', 'q')),
          k: scope.track(ctx.upload(input.k, [3, 11, 60], 'f32', 'k')),
          v: scope.track(ctx.upload(input.v, [3, 11, 64], 'f32', 'v')),
        };
        const out = scope.track(ctx.output([3, 11, 64], 'f32', 'out'));
        const again = scope.track(ctx.output([3, 11, 64], 'f32', 'again'));
        const record = ovqForwardGpu(state, { ...t, seqLen: 11 }, out);
        ovqReadPassGpu(state, record, again);
        const a = await ctx.readF32(out);
        const b = await ctx.readF32(again);
        record.scope.dispose();
        expect(a.some(Number.isNaN)).toBe(false);
        expect(Buffer.from(b.buffer).equals(Buffer.from(a.buffer))).toBe(true);
      } finally {
        state.dispose();
        scope.dispose();
      }
    });

    it('streaming in pieces equals one call, and the state round-trips through @ovq/core', async () => {
      const c: Case = {
        bh: 3,
        T: 63,
        dk: 60,
        dv: 64,
        config: { chunkSize: 7, capacity: 16, beta: 5 },
      };
      const input = makeInput(11, c);
      const whole = await ovqAttention(ctx, input, c.config);
      const state = createGpuOvqState(ctx, input, c.config);
      const cuts = [0, 1, 10, 11, 30, 63];
      const pieces: Float32Array[] = [];
      let moved = state;
      for (let i = 0; i + 1 < cuts.length; i++) {
        const [t0, t1] = [cuts[i], cuts[i + 1]];
        const slice = (x: Float32Array, d: number) => {
          const out = new Float32Array(c.bh * (t1 - t0) * d);
          for (let h = 0; h < c.bh; h++)
            out.set(x.subarray((h * c.T + t0) * d, (h * c.T + t1) * d), h * (t1 - t0) * d);
          return out;
        };
        const r = await ovqAppend(moved, {
          q: slice(input.q, c.dk),
          k: slice(input.k, c.dk),
          v: slice(input.v, c.dv),
          seqLen: t1 - t0,
        });
        pieces.push(r.output);
        if (i === 2) {
          // Move the stream GPU → CPU (serialized) → GPU mid-way.
          const bytes = (await readOvqState(moved)).map(serializeOvqState);
          moved.dispose();
          moved = uploadOvqState(ctx, bytes);
        }
      }
      // Reassemble [BH, T, dv] from the pieces.
      const joined = new Float32Array(c.bh * c.T * c.dv);
      let t0 = 0;
      pieces.forEach((p, i) => {
        const len = cuts[i + 1] - cuts[i];
        for (let h = 0; h < c.bh; h++)
          joined.set(p.subarray(h * len * c.dv, (h + 1) * len * c.dv), (h * c.T + t0) * c.dv);
        t0 += len;
      });
      assertClose('streamed output', whole.output, joined, 1e-5);
      compareStates(whole.state, await readOvqState(moved));
      moved.dispose();
    });

    it('follows a capacity change between calls, and an empty append changes nothing', async () => {
      const c: Case = {
        bh: 3,
        T: 70,
        dk: 64,
        dv: 60,
        config: { chunkSize: 7, capacity: 12, beta: 4, growth: 'fixed' },
      };
      const input = makeInput(31, c);
      const cut = 35;
      const part = (x: Float32Array, d: number, t0: number, t1: number) => {
        const out = new Float32Array(c.bh * (t1 - t0) * d);
        for (let h = 0; h < c.bh; h++)
          out.set(x.subarray((h * c.T + t0) * d, (h * c.T + t1) * d), h * (t1 - t0) * d);
        return out;
      };
      const piece = (t0: number, t1: number) => ({
        q: part(input.q, c.dk, t0, t1),
        k: part(input.k, c.dk, t0, t1),
        v: part(input.v, c.dv, t0, t1),
        seqLen: t1 - t0,
      });
      const gpu = createGpuOvqState(ctx, input, c.config);
      const first = await ovqAppend(gpu, piece(0, cut));
      expect((await ovqAppend(gpu, piece(cut, cut))).output.length).toBe(0);
      gpu.setCapacity(20);
      const second = await ovqAppend(gpu, piece(cut, c.T));
      const refs = Array.from({ length: c.bh }, (_, h) => {
        const seq = headSeq(input, h, c.T, c.dk, c.dv);
        const state = refCreate(c);
        const a = refAppend(state, {
          q: seq.q.subarray(0, cut * c.dk),
          k: seq.k.subarray(0, cut * c.dk),
          v: seq.v.subarray(0, cut * c.dv),
          seqLen: cut,
        });
        setOvqCapacity(state, 20);
        const b = refAppend(state, {
          q: seq.q.subarray(cut * c.dk),
          k: seq.k.subarray(cut * c.dk),
          v: seq.v.subarray(cut * c.dv),
          seqLen: c.T - cut,
        });
        return { a, b, state };
      });
      assertClose('before the change', concatF64(refs.map((r) => r.a)), first.output, TOL);
      assertClose('after the change', concatF64(refs.map((r) => r.b)), second.output, TOL);
      compareStates(
        refs.map((r) => r.state),
        await readOvqState(gpu),
      );
      expect(gpu.size).toBe(20);
      gpu.dispose();
    });

    it('rejects per-head states that disagree', async () => {
      const c: Case = {
        bh: 2,
        T: 10,
        dk: 8,
        dv: 8,
        config: { chunkSize: 7, capacity: 4, beta: 4 },
      };
      const a = refCreate(c);
      const b = refCreate(c);
      const seq = headSeq(makeInput(1, c), 0, c.T, c.dk, c.dv);
      refAppend(a, seq);
      expect(() => uploadOvqState(ctx, [a, b])).toThrow(/heads\[1\]: has dims\/config\/counters/);
      expect(() => uploadOvqState(ctx, [])).toThrow(/heads: got an empty array/);
    });

    it('continues a CPU stream on the GPU (upload of a @ovq/core state)', async () => {
      const c: Case = {
        bh: 3,
        T: 40,
        dk: 64,
        dv: 64,
        config: { chunkSize: 7, capacity: 8, beta: 4 },
      };
      const input = makeInput(21, c);
      const cpuStates = Array.from({ length: c.bh }, (_, h) => {
        const seq = headSeq(input, h, c.T, c.dk, c.dv);
        return { seq, state: refCreate(c) };
      });
      const T1 = 19;
      for (const { seq, state } of cpuStates) {
        refAppend(state, {
          q: seq.q.subarray(0, T1 * c.dk),
          k: seq.k.subarray(0, T1 * c.dk),
          v: seq.v.subarray(0, T1 * c.dv),
          seqLen: T1,
        });
      }
      const gpuState = uploadOvqState(
        ctx,
        cpuStates.map((s) => s.state.clone()),
      );
      const rest = (x: Float32Array, d: number) => {
        const out = new Float32Array(c.bh * (c.T - T1) * d);
        for (let h = 0; h < c.bh; h++)
          out.set(x.subarray((h * c.T + T1) * d, (h + 1) * c.T * d), h * (c.T - T1) * d);
        return out;
      };
      const gpu = await ovqAppend(gpuState, {
        q: rest(input.q, c.dk),
        k: rest(input.k, c.dk),
        v: rest(input.v, c.dv),
        seqLen: c.T - T1,
      });
      const refOut = cpuStates.map(({ seq, state }) =>
        refAppend(state, {
          q: seq.q.subarray(T1 * c.dk),
          k: seq.k.subarray(T1 * c.dk),
          v: seq.v.subarray(T1 * c.dv),
          seqLen: c.T - T1,
        }),
      );
      const flat = new Float64Array(refOut.reduce((n, o) => n + o.length, 0));
      refOut.forEach((o, h) => {
        flat.set(o, h * o.length);
      });
      assertClose('continued output', flat, gpu.output, TOL);
      compareStates(
        cpuStates.map((s) => s.state),
        await readOvqState(gpuState),
      );
      gpuState.dispose();
    });
  });
}

import { createOvqState, setOvqCapacity } from '@ovq/core';

function concatF64(parts: Float64Array[]): Float64Array {
  const out = new Float64Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function refCreate(c: Case) {
  return createOvqState({ keyDim: c.dk, valueDim: c.dv }, c.config);
}
