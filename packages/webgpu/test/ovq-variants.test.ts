// Kernel variants against the @ovq/core float64 reference, each forced on the same device: the
// plain read (every row lane leaves its own partial) and, where the adapter has `subgroups`, the
// subgroup read (lanes merged by subgroupShuffleXor). Outputs, final state, decisions verified as
// float64 near-ties only, NaN-poisoned outputs, one backward. No adapter here has `shader-f16`, so
// there is no f16 variant to test (README: "Kernel variants").
import { assertClose } from '@ovq/core/testing';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import { describe, expect, it } from 'vitest';
import { chooseVariant } from '../src/device/variants.js';
import { GpuContext } from '../src/gpu/context.js';
import { readTiling } from '../src/kernels/ovq/read/tiling.js';
import { ovqAttention, ovqAttentionBackward } from '../src/ovq/api.js';
import { present } from './adapters.js';
import {
  type Case,
  caseName,
  checkDecisions,
  compareGradients,
  compareStates,
  makeInput,
  reference,
  TOL,
} from './ovq-helpers.js';

const CASES: Case[] = [
  // dk not a multiple of 4, a partial last chunk, Gaussian read.
  {
    bh: 2,
    T: 45,
    dk: 6,
    dv: 10,
    config: { chunkSize: 8, capacity: 12, beta: 5, read: 'gaussian' },
  },
  { bh: 3, T: 300, dk: 32, dv: 24, config: { chunkSize: 32, capacity: 48, beta: 6 } },
  // A dictionary split across workgroups (flash-decoding): several splits per chunk at the end.
  {
    bh: 1,
    T: 1120,
    dk: 8,
    dv: 8,
    config: { chunkSize: 16, capacity: 1100, beta: 6, growth: 'full' },
  },
];

for (const adapter of present) {
  const base = adapter.ctx;
  // The subgroup variant where the device has `subgroups` and its layout probe passed (the
  // default context's choice; test/subgroup-layout.test.ts checks the probe's verdict).
  const variants = base?.variant.subgroups ? [false, true] : [false];
  if (base?.caps.subgroups && !base.variant.subgroups) {
    console.info(
      `[${adapter.name}] subgroup variant not tested: ${base.variant.subgroupsDisabledBecause}`,
    );
  }
  for (const subgroups of variants) {
    const suite = base ? describe : describe.skip;
    suite(`OVQ read variant ${subgroups ? 'subgroups' : 'plain'} on ${adapter.description}`, () => {
      const ctx = base
        ? new GpuContext(base.device, { poisonOutputs: true, subgroups })
        : (null as unknown as GpuContext);

      it('is the variant the device table picks', () => {
        expect(ctx.variant.subgroups).toBe(subgroups);
        expect(ctx.variant.subgroupsDisabledBecause === undefined).toBe(subgroups);
        const t = readTiling(ctx.caps, ctx.variant, 32, 24);
        expect(t.subgroups).toBe(subgroups && t.lanes > 1);
        expect(t.partials).toBe(t.subgroups ? 1 : t.lanes);
        // Turned off by the option whatever the device has.
        expect(chooseVariant(ctx.caps, { subgroups: false }).subgroups).toBe(false);
      });

      it.each(CASES.map((c) => [caseName(c), c] as const))(
        'forward matches the reference: %s',
        async (_name, c) => {
          const input = makeInput(400, c);
          const gpu = await ovqAttention(ctx, input, c.config);
          const ref = reference(input, c.config, gpu.trace);
          if (ref.ties > 0) console.info(`[${caseName(c)}] ${ref.ties} float64 near-ties`);
          assertClose('output', ref.output, gpu.output, TOL);
          compareStates(ref.states, gpu.state);
          const reads = ctx.pipelineKeys.filter(
            (k) => k.startsWith('ovq-read-') && !k.includes('combine'),
          );
          expect(reads.length).toBeGreaterThan(0);
          expect(reads.every((k) => k.endsWith('-sg') === subgroups)).toBe(true);
        },
        SLOW_TEST_TIMEOUT_MS,
      );

      it(
        'backward (which re-runs this forward) matches the reference gradients',
        async () => {
          const c = CASES[1];
          const input = makeInput(410, c);
          const dOut = Float32Array.from(makeInput(411, c).v);
          const fwd = await ovqAttention(ctx, input, c.config);
          const gpu = await ovqAttentionBackward(ctx, input, c.config, dOut);
          checkDecisions(input, c.config, fwd.trace);
          compareGradients(input, c.config, dOut, fwd.trace, gpu);
        },
        SLOW_TEST_TIMEOUT_MS,
      );

      it('gives the same bits twice', async () => {
        const c = CASES[1];
        const input = makeInput(7, c);
        const a = await ovqAttention(ctx, input, c.config);
        const b = await ovqAttention(ctx, input, c.config);
        expect(Buffer.from(a.output.buffer).equals(Buffer.from(b.output.buffer))).toBe(true);
      });
    });
  }
}
