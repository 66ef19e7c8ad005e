// The speed suite: every implementation's correctness check first (a failed or throwing check
// excludes it from all numbers), then tokens/s and GFLOP/s per T and mode, state size, and peak
// memory from a child process that streams the sequence.
import os from 'node:os';
import { type MemoryMeasurement, measureMemory, memoryProbeAvailable } from '../measure/memory.js';
import { type TimingStats, timeRepeats } from '../measure/timing.js';
import type { CheckResult, Dims, Implementation, Mode, Skipped } from '../registry/types.js';
import {
  bytes,
  consoleReporter,
  mib,
  type Reporter,
  sci,
  si,
  TextTable,
} from '../report/format.js';

export type SpeedOptions = {
  Ts: number[];
  modes: Mode[];
  dims: Dims;
  warmup: number;
  repeats: number;
  /** Seconds one (implementation, T, mode) may take in all; larger T are skipped by estimate. */
  budgetSeconds: number;
  /** T values whose peak memory is probed (subset of Ts); empty = no memory probe. */
  memoryTs: number[];
  /** Implementations (names) whose memory is probed; undefined = every one with a stream. */
  memoryImpls?: string[];
  memoryPiece: number;
  /** Open WebGPU adapters / load the tfjs backends (registry options, also used by the memory child). */
  webgpu: boolean;
  /** true: every @ovq/tfjs op; 'dense': only the dense tfjs-wasm attention yardstick. */
  tfjs: boolean | 'dense';
};

export const DEFAULT_SPEED: SpeedOptions = {
  Ts: [256, 1024, 4096, 16384, 65536],
  modes: ['forward', 'forward+backward'],
  dims: { keyDim: 64, valueDim: 64 },
  warmup: 1,
  repeats: 5,
  budgetSeconds: 60,
  memoryTs: [1024, 4096, 16384, 65536],
  memoryPiece: 1024,
  webgpu: true,
  tfjs: true,
};

export type CheckRow = CheckResult & {
  impl: string;
  mixer: string;
  implementation: string;
  error?: string;
};

/** A row whose timing spread p80/p20 exceeds this is marked noisy (its verdicts inconclusive). */
export const NOISY_SPREAD = 1.3;

/** 1-minute load average (runnable processes) around one measurement, and the cores there are. */
export type LoadSample = { before: number; after: number; cores: number };

export function loadNow(): number {
  return os.loadavg()[0];
}

export type SpeedRow = {
  impl: string;
  mixer: string;
  implementation: string;
  mode: Mode;
  T: number;
  status: 'ok' | 'skipped' | 'failed';
  reason?: string;
  flops: number;
  stateNumbers: number;
  timing?: TimingStats;
  tokensPerSecond?: { median: number; p20: number; p80: number };
  gflops?: { median: number; p20: number; p80: number };
  memory?: MemoryMeasurement;
  memoryError?: string;
  /** Machine load sampled before and after the timing. */
  load?: LoadSample;
  /** p80/p20 of the timing; > NOISY_SPREAD marks the row noisy. */
  spread?: number;
  noisy?: boolean;
};

export type SpeedResult = {
  options: SpeedOptions;
  checks: CheckRow[];
  rows: SpeedRow[];
  skipped: Skipped[];
};

/** Runs every check; an exception is a failed check, never a crash of the runner. */
export async function runChecks(impls: Implementation[], reporter: Reporter): Promise<CheckRow[]> {
  const rows: CheckRow[] = [];
  for (const impl of impls) {
    reporter.progress(`checking ${impl.name}…`);
    const base = { impl: impl.name, mixer: impl.mixer, implementation: impl.implementation };
    try {
      rows.push({ ...base, ...(await impl.check()) });
    } catch (error) {
      rows.push({
        ...base,
        ok: false,
        forwardRms: null,
        backwardRms: null,
        tolerance: Number.NaN,
        detail: 'check threw',
        error: String(error).slice(0, 300),
      });
    }
  }
  return rows;
}

export function formatChecks(checks: CheckRow[], skipped: Skipped[]): string {
  const t = new TextTable([
    { title: 'implementation', width: 30 },
    { title: 'check', width: 7 },
    { title: 'fwd rms', width: 8, align: 'right' },
    { title: 'bwd rms', width: 8, align: 'right' },
    { title: 'against', width: 10 },
  ]);
  const lines = [t.header()];
  for (const c of checks) {
    lines.push(
      t.row([
        c.impl,
        c.ok ? 'ok' : 'FAILED',
        sci(c.forwardRms),
        sci(c.backwardRms),
        c.error ? `threw: ${c.error}` : c.detail,
      ]),
    );
  }
  for (const s of skipped) lines.push(t.row([s.name, 'skipped', '', '', s.reason]));
  return lines.join('\n');
}

const speedTable = new TextTable([
  { title: 'implementation', width: 29 },
  { title: 'mode', width: 8 },
  { title: 'T', width: 6, align: 'right' },
  { title: 'tok/s med [p20–p80]', width: 24, align: 'right' },
  { title: 'GFLOP/s', width: 7, align: 'right' },
  { title: 'state', width: 7, align: 'right' },
  { title: 'held +', width: 9, align: 'right' },
  { title: 'RSS +', width: 8, align: 'right' },
  { title: 'load', width: 4, align: 'right' },
  { title: 'note', width: 5 },
]);

export function formatSpeedRow(r: SpeedRow): string {
  const mode = r.mode === 'forward' ? 'fwd' : 'fwd+bwd';
  if (r.status !== 'ok') {
    return speedTable.row([r.impl, mode, String(r.T), `${r.status}: ${r.reason ?? ''}`]);
  }
  const tps = r.tokensPerSecond!;
  const loadCell = r.load ? Math.max(r.load.before, r.load.after).toFixed(1) : '';
  return speedTable.row([
    r.impl,
    mode,
    String(r.T),
    `${si(tps.median)} [${si(tps.p20)}–${si(tps.p80)}]`,
    r.gflops ? r.gflops.median.toFixed(2) : '—',
    si(r.stateNumbers),
    r.memory ? bytes(r.memory.held) : '',
    r.memory
      ? mib(r.memory.growth)
      : r.memoryError
        ? r.memoryError === 'no streaming API'
          ? 'n/a'
          : 'error'
        : '',
    loadCell,
    r.noisy ? `noisy (p80/p20 ${r.spread!.toFixed(2)})` : '',
  ]);
}

export function speedHeader(): string {
  return speedTable.header();
}

/** Per-call seconds → tokens/s and GFLOP/s (fast calls give high rates: p20 of time = p80 of rate). */
function rates(t: TimingStats, T: number, flops: number) {
  const rate = (x: number) => ({ median: x / t.median, p20: x / t.p80, p80: x / t.p20 });
  return {
    tokensPerSecond: rate(T),
    gflops: Number.isFinite(flops) ? rate(flops / 1e9) : undefined,
  };
}

export async function runSpeed(
  impls: Implementation[],
  skipped: Skipped[],
  options: SpeedOptions,
  reporter: Reporter = consoleReporter,
): Promise<SpeedResult> {
  const checks = await runChecks(impls, reporter);
  reporter.line(formatChecks(checks, skipped));
  reporter.line('');
  reporter.line(speedHeader());
  const rows: SpeedRow[] = [];
  const probeMemory = options.memoryTs.length > 0 && memoryProbeAvailable();
  for (const impl of impls) {
    const check = checks.find((c) => c.impl === impl.name)!;
    for (const mode of options.modes) {
      let last: { T: number; seconds: number } | null = null;
      for (const T of options.Ts) {
        const base = {
          impl: impl.name,
          mixer: impl.mixer,
          implementation: impl.implementation,
          mode,
          T,
          flops: impl.flops(T, options.dims, mode),
          stateNumbers: impl.stateSize(T, options.dims),
        };
        let row: SpeedRow;
        if (!check.ok) {
          row = { ...base, status: 'skipped', reason: 'correctness check failed: no numbers' };
        } else if (mode === 'forward+backward' && !impl.hasBackward) {
          row = { ...base, status: 'skipped', reason: 'no backward in this implementation' };
        } else {
          row = await measureOne(impl, base, last, options, reporter);
          if (row.timing) last = { T, seconds: row.timing.median };
        }
        if (
          row.status === 'ok' &&
          mode === 'forward' &&
          probeMemory &&
          options.memoryTs.includes(T) &&
          (!options.memoryImpls || options.memoryImpls.includes(impl.name))
        ) {
          if (!impl.stream) row.memoryError = 'no streaming API';
          else {
            reporter.progress(
              `${impl.name} T=${T}: memory probe (child process)…`,
              (row.timing?.median ?? 0) > 10,
            );
            try {
              row.memory = await measureMemory(
                {
                  impl: impl.name,
                  T,
                  dims: options.dims,
                  piece: options.memoryPiece,
                  webgpu: options.webgpu,
                },
                Math.max(120, 4 * options.budgetSeconds),
              );
            } catch (error) {
              row.memoryError = String(error).slice(0, 200);
            }
          }
        }
        rows.push(row);
        reporter.line(formatSpeedRow(row));
      }
    }
  }
  return { options, checks, rows, skipped };
}

async function measureOne(
  impl: Implementation,
  base: Omit<SpeedRow, 'status'>,
  last: { T: number; seconds: number } | null,
  options: SpeedOptions,
  reporter: Reporter,
): Promise<SpeedRow> {
  const { T, mode } = base;
  let estimate = 0;
  if (last) {
    // Predict this T's call time from the previous one, scaled by the FLOP model (or by T).
    const prevFlops = impl.flops(last.T, options.dims, mode);
    const scale =
      Number.isFinite(base.flops) && prevFlops > 0 ? base.flops / prevFlops : T / last.T;
    estimate = last.seconds * scale;
    if (estimate * (options.warmup + Math.min(3, options.repeats)) > options.budgetSeconds) {
      return {
        ...base,
        status: 'skipped',
        reason: `over the ${options.budgetSeconds}s budget (est. ${estimate.toFixed(1)}s/call)`,
      };
    }
  }
  try {
    reporter.progress(`${impl.name} ${mode} T=${T}: setting up…`);
    const work = await impl.setup(T, options.dims);
    const fn = mode === 'forward' ? work.forward : work.forwardBackward!;
    reporter.progress(
      `${impl.name} ${mode} T=${T}: ${options.warmup} warm-up + ${options.repeats} timed` +
        (estimate > 0 ? ` (est. ${estimate.toFixed(1)}s each)…` : '…'),
      estimate > 10,
    );
    const before = loadNow();
    const timing = await timeRepeats(fn, {
      warmup: options.warmup,
      repeats: options.repeats,
      maxSeconds: options.budgetSeconds / 2,
      minRepeats: Math.min(3, options.repeats),
    });
    const load = { before, after: loadNow(), cores: os.cpus().length };
    work.dispose?.();
    const spread = timing.p80 / timing.p20;
    return {
      ...base,
      status: 'ok',
      timing,
      ...rates(timing, T, base.flops),
      load,
      spread,
      noisy: spread > NOISY_SPREAD,
    };
  } catch (error) {
    return { ...base, status: 'failed', reason: String(error).slice(0, 200) };
  }
}
