// The subgroup layout decision (device/subgroup-layout.ts) on synthetic probe read-backs: what a
// device with consecutive aligned subgroups reports is accepted; permuted layouts, wrong shuffles,
// unwritten entries and a partial last subgroup the absorb would miss are refused, naming why.
// Then the probe itself on each adapter here (SwiftShader has subgroups; llvmpipe has none).
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { DeviceCaps } from '../src/device/limits.js';
import {
  checkSubgroupLayout,
  probeSubgroupLayout,
  type SubgroupProbeData,
  subgroupLayoutOf,
} from '../src/device/subgroup-layout.js';
import { chooseVariant } from '../src/device/variants.js';
import { GpuContext } from '../src/gpu/context.js';
import { present } from './adapters.js';

/**
 * What a device reports when invocation i of each workgroup sits at lane `laneOf(i)` of the
 * subgroup whose members are `members(i)` (local indices, in lane order).
 */
function simulate(
  wg: number,
  size: number,
  groups: number,
  members: (i: number) => number[],
): SubgroupProbeData {
  const n = wg * groups;
  const d = {
    workgroupSize: wg,
    localIndex: new Array<number>(n),
    subgroupInvocationId: new Array<number>(n),
    subgroupSize: new Array<number>(n).fill(size),
    shuffleXor1: new Array<number>(n),
    shuffleXor2: new Array<number>(n),
    broadcastFirst: new Array<number>(n),
  };
  for (let w = 0; w < groups; w++) {
    for (let i = 0; i < wg; i++) {
      const g = w * wg + i;
      const sub = members(i);
      const lane = sub.indexOf(i);
      d.localIndex[g] = i;
      d.subgroupInvocationId[g] = lane;
      // An inactive partner (past a partial subgroup's end) returns an undefined value: 12345.
      d.shuffleXor1[g] = sub[lane ^ 1] ?? 12345;
      d.shuffleXor2[g] = sub[lane ^ 2] ?? 12345;
      d.broadcastFirst[g] = sub[0];
    }
  }
  return d;
}

/** Subgroups of `size` consecutive invocations aligned to `size` (the last may be partial). */
function consecutive(wg: number, size: number, groups = 2): SubgroupProbeData {
  return simulate(wg, size, groups, (i) => {
    const base = i - (i % size);
    return Array.from({ length: Math.min(size, wg - base) }, (_, k) => base + k);
  });
}

describe('checkSubgroupLayout (synthetic read-backs)', () => {
  it('accepts consecutive aligned subgroups of 4, 32 and 64 (workgroup 64)', () => {
    for (const size of [4, 32, 64]) {
      expect(checkSubgroupLayout(consecutive(64, size))).toEqual({ ok: true, subgroupSize: size });
    }
  });

  it('accepts one partial subgroup (workgroup 64, subgroup size 128)', () => {
    expect(checkSubgroupLayout(consecutive(64, 128))).toEqual({ ok: true, subgroupSize: 128 });
  });

  it('refuses a partial last subgroup after full ones (the absorb scans ⌊wg / size⌋ slots)', () => {
    const r = checkSubgroupLayout(consecutive(48, 32));
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/not a multiple of the subgroup size 32.*partial last/);
  });

  it('refuses strided subgroups (invocations i, i + 16, i + 32, i + 48 together)', () => {
    // Size 4, but members of a subgroup are 16 apart: the read would merge 4 different queries.
    const r = checkSubgroupLayout(
      simulate(64, 4, 2, (i) => [0, 1, 2, 3].map((k) => (i % 16) + 16 * k)),
    );
    expect(r.ok).toBe(false);
    // Lane 0 of {0, 16, 32, 48} looks aligned; its shuffle partner gives the layout away.
    expect(r.ok ? '' : r.reason).toMatch(
      /invocation 0 of workgroup 0: subgroupShuffleXor\(lid, 1\) gave 16, expected 1/,
    );
  });

  it('refuses a permuted layout whose lane ids still look consecutive', () => {
    // Invocation i reports lane i % 4, but the subgroups are {0, 2, 1, 3}-style swaps: only the
    // shuffle partners give it away.
    const d = consecutive(64, 4);
    const perm = (i: number) => i - (i % 4) + [0, 2, 1, 3][i % 4];
    for (let g = 0; g < d.localIndex.length; g++) {
      const i = g % 64;
      (d.shuffleXor1 as number[])[g] = perm(perm(i) ^ 1);
      (d.shuffleXor2 as number[])[g] = perm(perm(i) ^ 2);
    }
    const r = checkSubgroupLayout(d);
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/subgroupShuffleXor\(lid, 1\) gave 2, expected 1/);
  });

  it('refuses subgroups offset from the alignment (runs 2..5, 6..9, …)', () => {
    const r = checkSubgroupLayout(
      simulate(64, 4, 1, (i) => {
        const base = ((i + 62) % 64) - (((i + 62) % 64) % 4);
        return [0, 1, 2, 3].map((k) => (base + k + 2) % 64);
      }),
    );
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.reason).toMatch(/consecutive invocations aligned/);
  });

  it('refuses a wrong leader (the absorb slot tid / ssize)', () => {
    const d = consecutive(64, 32);
    (d.broadcastFirst as number[])[40] = 0;
    const r = checkSubgroupLayout(d);
    expect(r.ok ? '' : r.reason).toMatch(/invocation 40 of workgroup 0: subgroupBroadcastFirst/);
  });

  it('refuses an unwritten entry, mixed sizes and sizes that are not powers of two ≥ 4', () => {
    const unwritten = consecutive(64, 4);
    (unwritten.localIndex as number[])[64 + 7] = 0xffffffff;
    expect(checkSubgroupLayout(unwritten)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/invocation 7 of workgroup 1 reported local index 4294967295/),
    });
    const mixed = consecutive(64, 32);
    (mixed.subgroupSize as number[])[64 + 3] = 64;
    expect(checkSubgroupLayout(mixed)).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/subgroup sizes differ/),
    });
    for (const size of [2, 24]) {
      expect(checkSubgroupLayout(consecutive(48, size))).toMatchObject({
        ok: false,
        reason: expect.stringMatching(`subgroup size ${size}; expected a power of two`),
      });
    }
  });

  it('refuses a read-back of the wrong length', () => {
    const d = consecutive(64, 4);
    expect(checkSubgroupLayout({ ...d, shuffleXor2: [1, 2] }).ok).toBe(false);
    expect(checkSubgroupLayout({ ...d, workgroupSize: 60 }).ok).toBe(false);
  });
});

describe('probeSubgroupLayout on a device whose read-back never completes', () => {
  it('gives a failed verdict after the timeout instead of hanging, and caches it', async () => {
    // A stand-in device: everything the probe calls succeeds, but mapAsync never settles (as a
    // hung driver would). Only the members the probe touches exist.
    const noop = () => {};
    const buffer = () => ({
      getMappedRange: () => new ArrayBuffer(4 * 6 * 64 * 4),
      unmap: noop,
      destroy: noop,
      mapAsync: () => new Promise<void>(noop),
    });
    const device = {
      features: new Set(['subgroups']),
      limits: {
        maxComputeWorkgroupStorageSize: 16384,
        maxComputeInvocationsPerWorkgroup: 256,
        maxComputeWorkgroupSizeX: 256,
      },
      pushErrorScope: noop,
      popErrorScope: async () => null,
      createBuffer: buffer,
      createShaderModule: () => ({}),
      createComputePipeline: () => ({ getBindGroupLayout: () => ({}) }),
      createBindGroup: () => ({}),
      createCommandEncoder: () => ({
        beginComputePass: () => ({
          setPipeline: noop,
          setBindGroup: noop,
          dispatchWorkgroups: noop,
          end: noop,
        }),
        copyBufferToBuffer: noop,
        finish: () => ({}),
      }),
      queue: { submit: noop },
    } as unknown as GPUDevice;
    const verdict = await probeSubgroupLayout(device, { timeoutMs: 50 });
    expect(verdict.ok).toBe(false);
    expect(verdict.ok ? '' : verdict.reason).toBe('probe did not finish within 50 ms');
    expect(subgroupLayoutOf(device)).toEqual(verdict);
    expect(await probeSubgroupLayout(device)).toBe(verdict);
  });
});

describe('chooseVariant with a probe verdict', () => {
  const caps = {
    maxWorkgroupStorage: 32768,
    maxInvocations: 256,
    maxWorkgroupSizeX: 256,
    subgroups: true,
  } as DeviceCaps;
  const ok = { ok: true, subgroupSize: 4, workgroupSize: 64 } as const;

  afterEach(() => {
    vi.unstubAllEnvs();
  });

  it('chooses the subgroup kernels only with an ok verdict for the kernels’ workgroup size', () => {
    vi.stubEnv('OVQ_WEBGPU_SUBGROUPS', '');
    expect(chooseVariant(caps, { subgroupLayout: ok })).toMatchObject({ subgroups: true });
    expect(chooseVariant(caps, { subgroupLayout: ok }).subgroupsDisabledBecause).toBeUndefined();
    const failed = { ok: false, reason: 'permuted', workgroupSize: 64 } as const;
    expect(chooseVariant(caps, { subgroupLayout: failed })).toMatchObject({
      subgroups: false,
      subgroupsDisabledBecause: 'subgroup layout probe failed: permuted',
    });
    expect(chooseVariant(caps).subgroupsDisabledBecause).toMatch(/not probed/);
    expect(
      chooseVariant(caps, { subgroupLayout: { ...ok, workgroupSize: 32 } })
        .subgroupsDisabledBecause,
    ).toMatch(/probed with workgroup size 32, kernels use 64/);
    expect(
      chooseVariant(caps, { subgroupLayout: ok, subgroups: false }).subgroupsDisabledBecause,
    ).toMatch(/subgroups: false/);
    expect(chooseVariant({ ...caps, subgroups: false }, { subgroupLayout: ok }).subgroups).toBe(
      false,
    );
  });

  it('keeps the plain kernels under OVQ_WEBGPU_SUBGROUPS=0 even with an ok verdict', () => {
    vi.stubEnv('OVQ_WEBGPU_SUBGROUPS', '0');
    expect(chooseVariant(caps, { subgroupLayout: ok })).toMatchObject({
      subgroups: false,
      subgroupsDisabledBecause: 'turned off (OVQ_WEBGPU_SUBGROUPS=0)',
    });
  });
});

for (const adapter of present) {
  const suite = adapter.ctx ? describe : describe.skip;
  suite(`subgroup layout probe on ${adapter.description}`, () => {
    const base = adapter.ctx as GpuContext;

    it('ran in acquireDevice where the device has subgroups, and decides the variant', async () => {
      const device = base.device;
      const verdict = subgroupLayoutOf(device);
      if (!base.caps.subgroups) {
        // llvmpipe: no probe, plain kernels, and the reason says so.
        expect(verdict).toBeUndefined();
        expect(base.variant.subgroups).toBe(false);
        expect(base.variant.subgroupsDisabledBecause).toMatch(/no 'subgroups' feature/);
        return;
      }
      if (process.env.OVQ_WEBGPU_SUBGROUPS === '0') {
        // Plain kernels forced for the process: acquireDevice skipped the probe.
        expect(verdict).toBeUndefined();
        expect(base.variant.subgroups).toBe(false);
        expect(base.variant.subgroupsDisabledBecause).toMatch(/OVQ_WEBGPU_SUBGROUPS=0/);
        return;
      }
      expect(verdict).toBeDefined();
      // Cached: the same verdict object, no second run.
      expect(await probeSubgroupLayout(device)).toBe(verdict);
      console.info(`[${adapter.name}] subgroup layout probe: ${JSON.stringify(verdict)}`);
      if (/swiftshader/i.test(adapter.description)) {
        // SwiftShader: subgroups of 4 consecutive invocations.
        expect(verdict).toEqual({ ok: true, subgroupSize: 4, workgroupSize: 64 });
      }
      expect(base.variant.subgroups).toBe(verdict?.ok === true);
      expect(base.variant.subgroupLayout).toBe(verdict);
      // Forced plain: not chosen, and the reason names the option.
      const plain = new GpuContext(device, { subgroups: false });
      expect(plain.variant.subgroups).toBe(false);
      expect(plain.variant.subgroupsDisabledBecause).toMatch(/subgroups: false/);
      plain.dispose();
    });
  });
}
