// A hand-made results file with known contents, so plot and compare tests can count exactly.
import { type BenchReport, REPORT_SCHEMA } from '../src/report/json.js';
import type { SpeedRow } from '../src/suites/speed.js';

export const FIXTURE = {
  impls: ['ovq/core-chunked', 'softmax/baselines-fast', 'linear/baselines-fast'],
  Ts: [256, 1024, 4096, 8192],
  /** Implementations with a forward+backward series and with memory probes. */
  backward: ['ovq/core-chunked'],
  memory: ['ovq/core-chunked', 'softmax/baselines-fast', 'linear/baselines-fast'],
  /** Matched-state recall: two data sets, three budgets, these mixers (one point per budget). */
  recallDatasets: ['clustered', 'iid'] as const,
  recallBudgets: [4096, 8192, 16384],
  recallMixers: ['ovq', 'kvm', 'linear'],
  ablations: 4,
};

export function fixtureReport(
  o: { speedFactor?: number; accuracyShift?: number } = {},
): BenchReport {
  const f = o.speedFactor ?? 1;
  const shift = o.accuracyShift ?? 0;
  const rows: SpeedRow[] = [];
  for (const impl of FIXTURE.impls) {
    const [mixer, implementation] = impl.split('/');
    for (const mode of ['forward', 'forward+backward'] as const) {
      if (mode !== 'forward' && !FIXTURE.backward.includes(impl)) continue;
      for (const T of FIXTURE.Ts) {
        const seconds = (mixer === 'softmax' ? T * T * 1e-8 : T * 1e-5) / f;
        const timing = {
          median: seconds,
          p20: seconds * 0.9,
          p80: seconds * 1.2,
          min: seconds * 0.8,
          max: seconds * 1.3,
          repeats: 5,
          warmup: 1,
          samples: [seconds],
        };
        rows.push({
          impl,
          mixer,
          implementation,
          mode,
          T,
          status: 'ok',
          flops: 1e6 * T,
          stateNumbers: mixer === 'softmax' ? 64 * T : 20_000,
          timing,
          tokensPerSecond: { median: T / seconds, p20: T / timing.p80, p80: T / timing.p20 },
          gflops: { median: (1e-3 * T) / seconds, p20: 1, p80: 1 },
          load: { before: 0.5, after: 0.7, cores: 2 },
          spread: 1.2 / 0.9,
          noisy: false,
          memory:
            mode === 'forward' && FIXTURE.memory.includes(impl)
              ? {
                  peakRss: 1e8,
                  rssBaseline: 9e7,
                  maxRss: 2e8,
                  growth: mixer === 'softmax' ? 1000 * T : 1e5,
                  heldMax: 5e6,
                  heldBaseline: 4e6,
                  held: mixer === 'softmax' ? 512 * T : 0,
                  piece: 1024,
                  // Held bytes after each 1024-token piece: a KV cache grows, OVQ stays flat.
                  heldByPiece: Array.from({ length: Math.max(1, T / 1024) }, (_, i) =>
                    mixer === 'softmax'
                      ? 512 * 1024 * (i + 1)
                      : // Both drift by 5 B/token (the probe's own); OVQ adds nothing on top.
                        2048 + 5 * 1024 * i + ((i * 7919) % 3) * 64,
                  ),
                  seconds: 1,
                }
              : undefined,
        });
      }
    }
  }
  rows.push({
    impl: 'softmax/baselines-fast',
    mixer: 'softmax',
    implementation: 'baselines-fast',
    mode: 'forward',
    T: 16384,
    status: 'skipped',
    reason: 'over the budget',
    flops: 1,
    stateNumbers: 1,
  });
  // OVQ: 0.3 / 0.6 / 0.9 by budget, KVM 0.2 / 0.5 / 0.7, linear 0.03 flat (shifted by `shift`).
  const acc: Record<string, number[]> = {
    ovq: [0.3, 0.6, 0.9],
    kvm: [0.2, 0.5, 0.7],
    linear: [0.03, 0.03, 0.03],
  };
  const points = FIXTURE.recallDatasets.flatMap((dataset) =>
    FIXTURE.recallBudgets.flatMap((budget, b) =>
      FIXTURE.recallMixers.map((mixer) => ({
        mixer,
        setting: `${mixer} size ${b}`,
        stateNumbers: budget * 0.9,
        accuracy: acc[mixer][b] + shift,
        perSeed: [acc[mixer][b] + shift],
        validation: acc[mixer][b],
        implementation: 'fixture',
        dataset,
        budget,
      })),
    ),
  );
  const comparisons = FIXTURE.recallDatasets.flatMap((dataset) =>
    FIXTURE.recallBudgets.map((budget) => {
      const ranking = points
        .filter((p) => p.dataset === dataset && p.budget === budget)
        .sort((x, y) => y.accuracy - x.accuracy)
        .map(({ mixer, accuracy, setting, stateNumbers }) => ({
          mixer,
          accuracy,
          setting,
          stateNumbers,
        }));
      const ovq = ranking.find((r) => r.mixer === 'ovq')!;
      const other = ranking.find((r) => r.mixer !== 'ovq')!;
      return {
        dataset,
        budget,
        ranking,
        winner: ranking[0].mixer,
        margin: ranking[0].accuracy - ranking[1].accuracy,
        ovqGap: ovq.accuracy - other.accuracy,
        ovqGapSe: 0.02,
        bestOther: other.mixer,
      };
    }),
  );
  return {
    schema: REPORT_SCHEMA,
    suite: 'quick',
    createdAt: '2026-11-28T00:00:00.000Z',
    command: ['ovq-bench', 'quick'],
    wallSeconds: 1,
    machine: {
      platform: 'linux',
      arch: 'x64',
      release: '6',
      cpuModel: 'fixture cpu',
      cpuCount: 2,
      totalMemoryBytes: 2 ** 34,
      node: '20',
      v8: '11',
    },
    adapters: [],
    versions: { '@ovq/core': '0.0.0' },
    git: { commit: '0'.repeat(40), dirty: false },
    config: {},
    implementations: [],
    skipped: [
      {
        name: 'ovq/webgpu',
        mixer: 'ovq',
        implementation: 'webgpu',
        reason: 'fixture: not present',
      },
    ],
    speed: {
      options: {
        Ts: FIXTURE.Ts,
        modes: ['forward'],
        dims: { keyDim: 32, valueDim: 32 },
        warmup: 1,
        repeats: 5,
        budgetSeconds: 1,
        memoryTs: [],
        memoryPiece: 1024,
        webgpu: false,
        tfjs: false,
      },
      checks: FIXTURE.impls.map((impl) => ({
        impl,
        mixer: impl.split('/')[0],
        implementation: impl.split('/')[1],
        ok: true,
        forwardRms: 1e-7,
        backwardRms: null,
        tolerance: 1e-4,
        detail: 'fixture',
      })),
      rows,
      skipped: [],
    },
    syntheticRecall: {
      label: 'fixture recall',
      options: {} as never,
      points,
      references: FIXTURE.recallDatasets.map((dataset) => ({
        mixer: 'softmax',
        setting: 'KV cache',
        stateNumbers: 262_144,
        accuracy: 1,
        perSeed: [1],
        implementation: 'fixture',
        dataset,
      })),
      comparisons,
      candidates: 18,
      skipped: [],
    },
    ablate: {
      label: 'fixture ablations',
      options: {} as never,
      rows: ['default', 'spawn', 'growth', 'read'].map((axis, i) => ({
        axis: axis as 'default',
        variant: `v${i}`,
        accuracy: 0.2 * (i + 1) + shift,
        perSeed: [0.2 * (i + 1)],
        dictionarySize: 100,
        stateNumbers: 10_000,
        implementation: 'fixture',
      })),
      findings: [],
    },
    headlines: [
      { claim: 'fixture claim', held: true, verdict: 'held', evidence: 'fixture', rows: [] },
    ],
  };
}
