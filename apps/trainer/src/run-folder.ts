// The run folder (--out) of `ovq-train run`: ckpt.bin, metrics.jsonl and config.json belong to
// one run. A folder that holds a run is continued (--resume) or replaced (--force), never mixed
// with a new one, and nothing in it changes until the run has been accepted.
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  readCheckpointFile,
  type TrainConfig,
  verifyCheckpoint,
  writeFileAtomic,
} from '@ovq/train';
import type { RunFlags } from './config.js';
import { UsageError } from './flags.js';

export const RUN_FILES = {
  checkpoint: 'ckpt.bin',
  metrics: 'metrics.jsonl',
  config: 'config.json',
} as const;

export type AcceptedRun = {
  /** The checkpoint's config when resuming: flags and --config override it. */
  resumedConfig?: TrainConfig;
  /** Refuses (UsageError) a config that cannot continue the checkpoint: only steps may change. */
  checkConfig(config: TrainConfig): void;
  /** Once training has accepted the run: creates the folder, clears a replaced run, writes config.json. */
  prepare(config: TrainConfig): Promise<void>;
};

const writeConfig = async (out: string, config: TrainConfig) => {
  await mkdir(out, { recursive: true });
  await writeFileAtomic(
    join(out, RUN_FILES.config),
    new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`),
  );
};

/** Decides whether `run` may use --out, reading (never writing) what is there. */
export async function acceptRun(flags: RunFlags): Promise<AcceptedRun> {
  const out = flags.out ?? 'runs/latest';
  const checkpoint = join(out, RUN_FILES.checkpoint);
  if (flags.resume && flags.force)
    throw new UsageError(
      '--resume and --force: choose one (continue the run in --out, or replace it)',
    );
  if (flags.resume) {
    if (!existsSync(checkpoint)) {
      const started = [RUN_FILES.metrics, RUN_FILES.config].some((n) => existsSync(join(out, n)));
      throw new UsageError(
        started
          ? `--resume: ${checkpoint} does not exist: the run in ${out} stopped before its first checkpoint; start it over with --force`
          : `--resume: ${checkpoint} does not exist, so there is no run to continue in ${out}; start one without --resume`,
      );
    }
    // A corrupt checkpoint is an error of the file, not of the command line (exit 1).
    const { header } = verifyCheckpoint(await readCheckpointFile(checkpoint), checkpoint);
    const saved = header.config as TrainConfig;
    return {
      resumedConfig: saved,
      checkConfig(config) {
        const keys = [...new Set([...Object.keys(saved), ...Object.keys(config)])];
        const differing = keys.filter(
          (k) =>
            k !== 'steps' &&
            JSON.stringify((saved as Record<string, unknown>)[k]) !==
              JSON.stringify((config as Record<string, unknown>)[k]),
        );
        if (differing.length > 0)
          throw new UsageError(
            `--resume: this run's ${differing.join(', ')} differ from the checkpoint's; only --steps may change when resuming (leave the other flags out to keep the checkpoint's)`,
          );
        if (config.steps < header.step)
          throw new UsageError(
            `--steps: ${config.steps} is below the checkpoint's step ${header.step}; give at least ${header.step}`,
          );
      },
      prepare: (config) => writeConfig(out, config),
    };
  }
  const present = Object.values(RUN_FILES).filter((name) => existsSync(join(out, name)));
  if (present.length > 0 && !flags.force)
    throw new UsageError(
      `--out: ${out} already holds a run (${present.join(', ')}); pass --resume to continue it or --force to replace it`,
    );
  return {
    checkConfig() {},
    async prepare(config) {
      // --force: the old run's files go first, so a kill now cannot leave a mix of two runs.
      for (const name of Object.values(RUN_FILES)) await rm(join(out, name), { force: true });
      await writeConfig(out, config);
    },
  };
}
