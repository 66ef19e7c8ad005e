import { describe, expect, it } from 'vitest';
import { BASELINE_SPECS, baselineImplementation } from '../src/registry/baselines.js';
import { loadRegistry } from '../src/registry/index.js';
import type { Implementation } from '../src/registry/types.js';
import { silentReporter } from '../src/report/format.js';
import { DEFAULT_SPEED, runChecks, runSpeed } from '../src/suites/speed.js';

const tiny = {
  ...DEFAULT_SPEED,
  Ts: [96, 160],
  modes: ['forward', 'forward+backward'] as const,
  dims: { keyDim: 8, valueDim: 8 },
  warmup: 1,
  repeats: 2,
  memoryTs: [],
  webgpu: false,
  tfjs: false,
};

/** The real linear-attention fast path with one output element off by 5% relative. */
function subtlyWrongLinear(): Implementation {
  const spec = BASELINE_SPECS.find((s) => s.mixer === 'linear')!;
  const impl = baselineImplementation({
    ...spec,
    fast: (seq, options) => {
      const r = spec.fast(seq, options);
      (r.output as Float32Array)[5] *= 1.05;
      return r;
    },
  });
  return { ...impl, name: 'linear/broken-fake', implementation: 'broken-fake' };
}

/** A fast path that skips writing the last output row: the NaN-poisoned buffer catches it. */
function skipsAWrite(): Implementation {
  const spec = BASELINE_SPECS.find((s) => s.mixer === 'softmax')!;
  return {
    ...baselineImplementation({
      ...spec,
      fast: (seq, options) => {
        const saved = options.out ? Float32Array.from(options.out) : undefined;
        const r = spec.fast(seq, options);
        if (saved && options.out) {
          const dv = seq.valueDim;
          options.out.set(saved.subarray(saved.length - dv), options.out.length - dv);
        }
        return r;
      },
    }),
    name: 'softmax/lazy-fake',
  };
}

describe('registry correctness checks', () => {
  it('every CPU implementation present passes its check against the float64 reference', async () => {
    const registry = await loadRegistry({ webgpu: false, tfjs: false });
    const names = registry.implementations.map((i) => i.name);
    expect(names).toContain('ovq/core-reference');
    expect(names).toContain('softmax/baselines-fast');
    const checks = await runChecks(registry.implementations, silentReporter);
    for (const c of checks)
      expect(c, `${c.impl}: ${c.detail} ${c.error ?? ''}`).toMatchObject({ ok: true });
    // Absent implementations are listed with a reason, never dropped silently.
    for (const s of registry.skipped) expect(s.reason.length).toBeGreaterThan(10);
    expect(registry.skipped.some((s) => s.implementation.startsWith('webgpu'))).toBe(true);
  });

  it('a fast path that leaves an output unwritten fails its check (NaN-poisoned buffer)', async () => {
    const [row] = await runChecks([skipsAWrite()], silentReporter);
    expect(row.ok).toBe(false);
    expect(row.forwardRms).toBe(Number.POSITIVE_INFINITY);
  });

  it('the OVQ reference is checked against the softmax oracle, never ok by default', async () => {
    const registry = await loadRegistry({ webgpu: false, tfjs: false });
    const ref = registry.implementations.find((i) => i.name === 'ovq/core-reference')!;
    const c = await ref.check();
    expect(c.forwardRms).not.toBeNull();
    expect(c.forwardRms!).toBeLessThan(1e-10);
    expect(c.detail).toMatch(/softmaxAttention/);
  });

  it('a deliberately wrong implementation fails its check and gets no numbers', async () => {
    const good = (await loadRegistry({ webgpu: false, tfjs: false })).implementations.find(
      (i) => i.name === 'linear/baselines-fast',
    )!;
    const broken = subtlyWrongLinear();
    const throwing: Implementation = {
      ...good,
      name: 'linear/throwing-fake',
      check: async () => {
        throw new Error('kernel crashed');
      },
    };
    const result = await runSpeed(
      [good, broken, throwing],
      [],
      { ...tiny, modes: [...tiny.modes] },
      silentReporter,
    );
    const check = (name: string) => result.checks.find((c) => c.impl === name)!;
    expect(check('linear/baselines-fast').ok).toBe(true);
    expect(check('linear/broken-fake').ok).toBe(false);
    expect(check('linear/broken-fake').forwardRms).toBeGreaterThan(1e-4);
    expect(check('linear/throwing-fake')).toMatchObject({
      ok: false,
      error: 'Error: kernel crashed',
    });
    for (const name of ['linear/broken-fake', 'linear/throwing-fake']) {
      const rows = result.rows.filter((r) => r.impl === name);
      expect(rows).toHaveLength(4);
      for (const r of rows) {
        expect(r.status).toBe('skipped');
        expect(r.reason).toMatch(/check failed/);
        expect(r.timing).toBeUndefined();
        expect(r.tokensPerSecond).toBeUndefined();
      }
    }
    const ok = result.rows.filter((r) => r.impl === 'linear/baselines-fast');
    expect(ok.map((r) => r.status)).toEqual(['ok', 'ok', 'ok', 'ok']);
    expect(ok[0].timing!.samples).toHaveLength(2);
    expect(ok[0].tokensPerSecond!.median).toBeGreaterThan(0);
    expect(ok[0].gflops!.median).toBeGreaterThan(0);
  });
});
