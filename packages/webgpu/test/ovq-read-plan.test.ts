// The forward's dispatch plan on every adapter present: at most 3 dispatches per chunk (counted by
// the package), bind groups reused within a submit, and the two paths that only long sequences and
// large dictionaries take, checked against the float64 reference (outputs, final state, verified
// decisions, NaN-poisoned outputs): several batches of chunks (one read combine each), and a
// dictionary split across workgroups (flash-decoding partials merged by the combine and the absorb).
import type { OvqConfig } from '@ovq/core';
import { assertClose } from '@ovq/core/testing';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import { describe, expect, it } from 'vitest';
import { TensorScope } from '../src/gpu/tensor.js';
import { readTiling } from '../src/kernels/ovq/read/tiling.js';
import { decodeTrace } from '../src/ovq/api.js';
import { CHUNKS_PER_SUBMIT, ovqForwardGpu, readPlan } from '../src/ovq/forward.js';
import { createGpuOvqState, readOvqState } from '../src/ovq/state.js';
import { present } from './adapters.js';
import { type Case, caseName, compareStates, makeInput, reference, TOL } from './ovq-helpers.js';

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`OVQ forward dispatch plan on ${adapter.description}`, () => {
    const ctx = adapter.ctx!;

    async function run(c: Case) {
      const input = makeInput(900, c);
      const state = createGpuOvqState(ctx, input, c.config);
      const scope = new TensorScope();
      try {
        const shape = (d: number) => [c.bh, c.T, d];
        const q = scope.track(ctx.upload(input.q, shape(c.dk)));
        const k = scope.track(ctx.upload(input.k, shape(c.dk)));
        const v = scope.track(ctx.upload(input.v, shape(c.dv)));
        const out = scope.track(ctx.output(shape(c.dv), 'f32', 'out'));
        const record = ovqForwardGpu(state, { q, k, v, seqLen: c.T }, out);
        const output = await ctx.readF32(out);
        const trace = decodeTrace(
          record,
          await ctx.readI32(record.trace),
          c.bh,
          c.config.chunkSize,
        );
        const final = await readOvqState(state);
        const plan = readPlan(ctx, state, readTiling(ctx.caps, ctx.variant, c.dk, c.dv), c.T);
        record.scope.dispose();
        await ctx.checkErrors();
        const ref = reference(input, c.config, trace);
        assertClose(`${caseName(c)} output`, ref.output, output, TOL);
        compareStates(ref.states, final);
        return { dispatches: record.dispatches, plan, size: final[0].size };
      } finally {
        state.dispose();
        scope.dispose();
      }
    }

    it('several batches of chunks: ≤ 3 dispatches per chunk, bind groups reused', async () => {
      const config: OvqConfig = { chunkSize: 4, capacity: 24, beta: 6 };
      const T = 4 * (CHUNKS_PER_SUBMIT + 3) + 2;
      const { dispatches: d } = await run({ bh: 2, T, dk: 8, dv: 12, config });
      expect(d.chunks).toBe(CHUNKS_PER_SUBMIT + 4);
      expect(d.perChunk).toBeLessThanOrEqual(3);
      // Per chunk a read and an absorb (none for the tail), plus one combine per batch.
      expect(d.inChunks).toBe(d.chunks + (d.chunks - 1) + d.submits);
      expect(d.submits).toBe(2);
      expect(d.bindGroups).toBeLessThanOrEqual(8 * d.submits);
    });

    it(
      'a dictionary split across workgroups (flash-decoding) matches the reference',
      async () => {
        const config: OvqConfig = { chunkSize: 16, capacity: 1100, beta: 6, growth: 'full' };
        const { plan, size } = await run({ bh: 2, T: 1120, dk: 8, dv: 8, config });
        // The last chunks read ~1100 rows: more than one split per chunk on every adapter's row.
        expect(plan.splits(size)).toBeGreaterThan(1);
      },
      SLOW_TEST_TIMEOUT_MS,
    );
  });
}
