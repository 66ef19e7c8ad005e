// The JSON results file: what ran, where, on which code, with which settings, and every number.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Skipped } from '../registry/types.js';
import type { AdapterInfo } from '../registry/webgpu.js';
import type { AblateResult } from '../suites/ablate.js';
import type { LmResult } from '../suites/lm.js';
import type { TrainedRecallResult } from '../suites/recall.js';
import type { SyntheticRecallResult } from '../suites/recall-synthetic.js';
import type { SpeedResult } from '../suites/speed.js';

export const REPORT_SCHEMA = 'ovq-bench/1';

export type Verdict = 'held' | 'not held' | 'inconclusive (noisy)' | 'not measured';

export type Headline = {
  claim: string;
  /** true/false only when the verdict is 'held'/'not held'; null when inconclusive or unmeasured. */
  held: boolean | null;
  verdict: Verdict;
  evidence: string;
  /** The table rows the verdict was computed from (speed rows `impl@T`, recall budgets…). */
  rows: string[];
};

export type BenchReport = {
  schema: typeof REPORT_SCHEMA;
  suite: string;
  createdAt: string;
  command: string[];
  wallSeconds: number;
  machine: {
    platform: string;
    arch: string;
    release: string;
    cpuModel: string;
    cpuCount: number;
    totalMemoryBytes: number;
    node: string;
    v8: string;
  };
  adapters: AdapterInfo[];
  versions: Record<string, string>;
  git: { commit: string | null; dirty: boolean | null };
  config: Record<string, unknown>;
  implementations: { name: string; mixer: string; implementation: string; config: string }[];
  skipped: Skipped[];
  speed?: SpeedResult;
  syntheticRecall?: SyntheticRecallResult;
  recall?: TrainedRecallResult;
  ablate?: AblateResult;
  lm?: LmResult;
  headlines?: Headline[];
  /** 1-minute load average when the run started and ended (other processes slow timings). */
  load?: { start: number; end: number };
  /** Results of other tools shown in the report (train-speed, the trainer's regime sweep). */
  attachments?: { title: string; path: string; data: unknown }[];
};

const HERE = dirname(fileURLToPath(import.meta.url));

export function machineInfo(): BenchReport['machine'] {
  const cpus = os.cpus();
  return {
    platform: os.platform(),
    arch: os.arch(),
    release: os.release(),
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryBytes: os.totalmem(),
    node: process.versions.node,
    v8: process.versions.v8,
  };
}

/** Versions of the packages whose code was measured (from their package.json). */
export function packageVersions(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const out: Record<string, string> = {};
  for (const name of [
    '@ovq/bench',
    '@ovq/core',
    '@ovq/baselines',
    '@ovq/webgpu',
    '@ovq/tfjs',
    '@ovq/train',
  ]) {
    try {
      const path =
        name === '@ovq/bench'
          ? `${HERE}/../../package.json`
          : require.resolve(`${name}/package.json`);
      out[name] = (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
    } catch {
      out[name] = 'unavailable';
    }
  }
  return out;
}

/** `git rev-parse HEAD` and whether the work tree has changes; null outside a checkout. */
export function gitInfo(): BenchReport['git'] {
  const git = (args: string[]) =>
    execFileSync('git', args, {
      cwd: HERE,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  try {
    const commit = git(['rev-parse', 'HEAD']);
    let dirty: boolean | null = null;
    try {
      dirty = git(['status', '--porcelain', '--untracked-files=no']).length > 0;
    } catch {}
    return { commit, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

export function writeJson(path: string, report: BenchReport): void {
  mkdirSync(dirname(path), { recursive: true });
  // Infinity/NaN are not JSON: write them as strings so a failed check's ratio stays visible.
  const text = JSON.stringify(
    report,
    (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v),
    2,
  );
  writeFileSync(path, `${text}\n`);
}

export function readReport(path: string): BenchReport {
  let parsed: BenchReport;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8')) as BenchReport;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(error);
    throw new Error(`${path}: cannot read (${why}); expected an ovq-bench results file`);
  }
  if (parsed.schema !== REPORT_SCHEMA) {
    throw new Error(
      `${path}: schema ${String(parsed.schema)}; expected ${REPORT_SCHEMA} (an ovq-bench results file)`,
    );
  }
  return parsed;
}
