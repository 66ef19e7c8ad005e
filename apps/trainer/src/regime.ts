// `ovq-train sweep --config experiments/regime.json`: the regime experiment (schema
// ovq-regime/1). Cells run in plan order; after each one its rows are merged into the results
// file under a lock (several processes may share it: --shard i/n), optionally committed to git,
// so a sweep killed at any moment resumes where it stopped.
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import {
  createTfjsMixer,
  mergeResults,
  planCells,
  RESULTS_SCHEMA,
  type RegimeCell,
  type RegimeConfig,
  type ResultRow,
  type ResultsFile,
  runRegime,
  shardCells,
  unfitBudgets,
  validateRegimeConfig,
  validateResults,
} from '@ovq/train';
import { disposeBackend, useBackend } from './backend.js';
import { UsageError } from './flags.js';

export type RegimeFlags = {
  results: string;
  shard?: string;
  only?: string;
  commit: boolean;
  dryRun: boolean;
  runs: string;
};

export function isRegimeFile(raw: unknown): boolean {
  return (
    typeof raw === 'object' &&
    raw !== null &&
    (raw as { schema?: unknown }).schema === 'ovq-regime/1'
  );
}

function git(args: string[]): string | undefined {
  try {
    return execFileSync('git', args, {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

/** Parses "i/n" (0 ≤ i < n). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m || Number(m[1]) >= Number(m[2]) || Number(m[2]) < 1)
    throw new UsageError(`--shard: got "${text}"; expected i/n with 0 ≤ i < n, e.g. 0/2`);
  return { index: Number(m[1]), count: Number(m[2]) };
}

/** Serialises read-merge-write of the results file across processes with an O_EXCL lock file. */
async function withLock<T>(path: string, body: () => T): Promise<T> {
  const lock = `${path}.lock`;
  for (let tries = 0; ; tries++) {
    try {
      closeSync(openSync(lock, 'wx'));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || tries > 600)
        throw new Error(
          `results lock ${lock}: ${(e as Error).message} (remove it if no sweep runs)`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    return body();
  } finally {
    rmSync(lock, { force: true });
  }
}

function readResults(path: string, machine: string, commit: string): ResultsFile {
  if (!existsSync(path)) return { schema: RESULTS_SCHEMA, commit, machine, rows: [] };
  return validateResults(JSON.parse(readFileSync(path, 'utf8')), path);
}

/**
 * The cells `--only` selects: a group (task/mixers/budget) or one cell id, plus the lr search a
 * test cell needs: to pick among several rates, or (first seed) for the model it reuses. With a
 * single rate, the other seeds' test cells run alone, so they can run beside the search.
 */
export function selectCells(
  cells: RegimeCell[],
  only: string | undefined,
  lrCount = 2,
): RegimeCell[] {
  if (only === undefined) return cells;
  const target = cells.find((c) => c.id === only || c.group === only);
  if (!target) {
    const groups = [...new Set(cells.map((c) => c.group))];
    throw new UsageError(
      `--only: "${only}" is no cell or group of this plan; groups: ${groups.join(', ')}`,
    );
  }
  const search = (c: RegimeCell) => c.group === target.group && c.phase === 'lr-search';
  const needsSearch =
    target.phase === 'test' &&
    (lrCount > 1 || cells.some((c) => search(c) && c.seed === target.seed));
  return cells.filter((c) => c.id === only || c.group === only || (needsSearch && search(c)));
}

/** What an ablation cell changes (empty for the main cells). */
function ablationText(c: RegimeCell): string {
  if (c.evalCapacity !== undefined)
    return `[scores the default model with OVQ capacity ×${c.evalCapacity} = ${Math.max(1, Math.round((c.mixerOptions.ovqCapacity ?? 0) * c.evalCapacity))}] `;
  if (c.evalBetaScale !== undefined)
    return `[scores the default model with every OVQ head's β ×${c.evalBetaScale}] `;
  if (c.evalSpawnDistance !== undefined)
    return `[scores the default model with novelty spawn beyond squared distance ${c.evalSpawnDistance}] `;
  if (c.variant === undefined) return '';
  const o = c.mixerOptions;
  const axes = [
    o.ovqGrowth === undefined ? '' : `growth ${JSON.stringify(o.ovqGrowth)}`,
    o.ovqSpawn === undefined ? '' : `spawn ${JSON.stringify(o.ovqSpawn)}`,
    o.ovqUpdate === undefined ? '' : `update ${JSON.stringify(o.ovqUpdate)}`,
    o.ovqSpawnDistance === undefined ? '' : `novelty spawn beyond ${o.ovqSpawnDistance}`,
  ].filter(Boolean);
  return `[trains OVQ with ${axes.join(', ') || 'the defaults'}] `;
}

export async function runRegimeSweep(
  file: string,
  raw: unknown,
  flags: RegimeFlags,
  log: (line: string) => void,
): Promise<void> {
  const config = raw as RegimeConfig;
  try {
    validateRegimeConfig(config);
  } catch (e) {
    throw new UsageError(`--config ${file}: ${(e as Error).message}`);
  }
  const all = planCells(config);
  for (const u of unfitBudgets(config))
    log(`skipped: ${u.mixers} at budget ${u.budget}: ${u.reason}`);
  let cells = selectCells(all, flags.only, config.lrs.length);
  if (flags.shard) {
    const { index, count } = parseShard(flags.shard);
    cells = shardCells(cells, index, count);
  }
  if (flags.dryRun) {
    for (const c of cells)
      log(
        `${c.id}  ${ablationText(c)}${c.matches.map((m) => (m.knob ? `${m.kind}.${m.knob}=${m.value} (${m.stateNumbers} numbers)` : Number.isFinite(m.stateNumbers) ? `${m.kind} at its natural size (${m.stateNumbers} numbers)` : `${m.kind}: grows with T (no budget)`)).join(', ')}`,
      );
    log(`${cells.length} of ${all.length} cells`);
    return;
  }
  const backend = await useBackend(config.backend);
  const commit = git(['rev-parse', '--short', 'HEAD']) ?? 'unknown';
  const dirty = git(['status', '--porcelain', '--untracked-files=no']) ? '+dirty' : '';
  const machine = `${cpus().length}-core ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, tfjs ${backend}`;
  mkdirSync(dirname(flags.results) || '.', { recursive: true });
  const abort = new AbortController();
  const stop = () => {
    log('ovq-train sweep: stopping after the cell in flight (its checkpoint keeps its progress)');
    abort.abort();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    const ran = await runRegime(config, cells, {
      createMixer: createTfjsMixer,
      load: async () => withLock(flags.results, () => readResults(flags.results, machine, commit)),
      save: async (rows: ResultRow[]) =>
        withLock(flags.results, () => {
          const merged = mergeResults(readResults(flags.results, machine, commit), rows);
          const out = { ...merged, commit: `${commit}${dirty}`, machine };
          const temp = `${flags.results}.tmp-${process.pid}`;
          writeFileSync(temp, `${JSON.stringify(out, null, 1)}\n`);
          renameSync(temp, flags.results);
        }),
      checkpointFor: (cell) => {
        const path = join(flags.runs, cell.id.replace(/[^A-Za-z0-9.=,-]+/g, '_'), 'ckpt.bin');
        return { path, exists: existsSync(path) };
      },
      commandFor: (cell) => `ovq-train sweep --config ${file} --only '${cell.id}'`,
      onMessage: log,
      signal: abort.signal,
      onCellDone: (cell) => {
        if (!flags.commit) return;
        git(['add', flags.results]);
        git([
          'commit',
          '-q',
          '-m',
          `regime: ${cell.id} (ovq-train sweep --config ${file} --only '${cell.id}')`,
          '--',
          flags.results,
        ]);
      },
    });
    log(`ovq-train sweep: ${ran} cell(s) run; results in ${flags.results}`);
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    await disposeBackend();
  }
}
