// A hand-made results file with known contents, so plot and compare tests can count exactly.
import { type BenchReport, REPORT_SCHEMA } from '../src/report/json.js';
import type { SpeedRow } from '../src/suites/speed.js';

export const FIXTURE = {
  impls: ['ovq/core-chunked', 'softmax/baselines-fast', 'linear/baselines-fast'],
  Ts: [256, 1024, 4096],
  /** Implementations with a forward+backward series and with memory probes. */
  backward: ['ovq/core-chunked'],
  memory: ['ovq/core-chunked', 'softmax/baselines-fast'],
  recallMixers: { ovq: 3, softmax: 1, linear: 1 },
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
  const point = (mixer: string, setting: string, stateNumbers: number, accuracy: number) => ({
    mixer,
    setting,
    stateNumbers,
    accuracy: accuracy + shift,
    perSeed: [accuracy + shift],
    implementation: 'fixture',
  });
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
      points: [
        point('ovq', 'N=32', 6000, 0.1),
        point('ovq', 'N=64', 8000, 0.3),
        point('ovq', 'N=128', 12000, 0.6),
        point('softmax', 'KV', 262_000, 0.9),
        point('linear', 'elu+1', 1000, 0.03),
      ],
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
    },
    headlines: [{ claim: 'fixture claim', held: true, evidence: 'fixture' }],
  };
}
