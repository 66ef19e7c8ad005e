// The regime experiment's results file, schema `ovq-results/1`: one row per (task, mixers,
// budget, seed, training length, learning rate, evaluation length, metric), each with the command that
// reproduces it. Rows are merged by that key, so a resumed or split sweep never duplicates one.
// Byte-LM loss rows may carry `byPosition` (binned loss by position); files without it stay valid.

export const RESULTS_SCHEMA = 'ovq-results/1';

export type ResultRow = {
  task: string;
  mixers: string;
  /** The matched state budget (numbers per layer per sequence), or null for unbudgeted runs. */
  budget: number | null;
  /** Numbers all mixer layers of the model hold per sequence at evalLen (ALGORITHM.md §6). */
  stateNumbers: number;
  trainLen: number;
  evalLen: number;
  seed: number;
  lr: number;
  /** e.g. 'accuracy', 'loss', 'accuracy@depth=0.5'. */
  metric: string;
  value: number;
  /** Reproduces this row from a clean clone. */
  command: string;
  /**
   * Optional, byte-LM `loss` rows: the metric in equal position bins over [0, evalLen): bin i
   * covers positions ⌊i·evalLen/n⌋ … ⌊(i+1)·evalLen/n⌋ − 1 of n = byPosition.length bins.
   */
  byPosition?: number[];
};

/** Positions [start, end) of bin `i` of `bins` equal bins over `length` positions. */
export function positionBin(i: number, bins: number, length: number): [number, number] {
  return [Math.floor((i * length) / bins), Math.floor(((i + 1) * length) / bins)];
}

/** Means of `values` (NaN entries skipped) over `bins` equal position bins (see ResultRow). */
export function binPositions(values: ArrayLike<number>, bins: number): number[] {
  if (!Number.isInteger(bins) || bins < 1 || bins > values.length)
    throw new RangeError(`bins is ${bins}; expected an integer in 1…${values.length}`);
  return Array.from({ length: bins }, (_, i) => {
    const [start, end] = positionBin(i, bins, values.length);
    let sum = 0;
    let n = 0;
    for (let t = start; t < end; t++)
      if (!Number.isNaN(values[t])) {
        sum += values[t];
        n++;
      }
    return n > 0 ? sum / n : Number.NaN;
  });
}

export type ResultsFile = {
  schema: typeof RESULTS_SCHEMA;
  commit: string;
  machine: string;
  rows: ResultRow[];
};

const rowKey = (r: ResultRow) =>
  JSON.stringify([r.task, r.mixers, r.budget, r.seed, r.trainLen, r.lr, r.evalLen, r.metric]);

/** Checks a parsed results file; names the first bad field. */
export function validateResults(value: unknown, source = 'results'): ResultsFile {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (typeof value !== 'object' || value === null) fail('expected a JSON object');
  const file = value as Record<string, unknown>;
  if (file.schema !== RESULTS_SCHEMA)
    fail(`schema is ${JSON.stringify(file.schema)}; expected "${RESULTS_SCHEMA}"`);
  if (typeof file.commit !== 'string') fail('commit: expected a string');
  if (typeof file.machine !== 'string') fail('machine: expected a string');
  if (!Array.isArray(file.rows)) fail('rows: expected an array');
  (file.rows as unknown[]).forEach((row, i) => {
    const r = row as Record<string, unknown>;
    for (const key of ['task', 'mixers', 'metric', 'command'])
      if (typeof r[key] !== 'string') fail(`rows[${i}].${key}: expected a string`);
    for (const key of ['stateNumbers', 'trainLen', 'evalLen', 'seed', 'lr', 'value'])
      if (typeof r[key] !== 'number' || !Number.isFinite(r[key]))
        fail(`rows[${i}].${key}: expected a finite number, got ${JSON.stringify(r[key])}`);
    if (r.budget !== null && (typeof r.budget !== 'number' || !(r.budget > 0)))
      fail(`rows[${i}].budget: expected a positive number or null`);
    if (r.byPosition !== undefined) {
      const bins = r.byPosition as unknown[];
      if (
        !Array.isArray(bins) ||
        bins.length < 1 ||
        bins.length > (r.evalLen as number) ||
        !bins.every((v) => typeof v === 'number' && Number.isFinite(v))
      )
        fail(
          `rows[${i}].byPosition: expected 1…${r.evalLen} finite numbers (one per position bin), got ${JSON.stringify(r.byPosition).slice(0, 80)}`,
        );
    }
  });
  return file as unknown as ResultsFile;
}

/** `file` with `rows` added; a row with the same key replaces the older one. */
export function mergeResults(file: ResultsFile, rows: ResultRow[]): ResultsFile {
  const merged = new Map(file.rows.map((r) => [rowKey(r), r]));
  for (const r of rows) merged.set(rowKey(r), r);
  return { ...file, rows: [...merged.values()] };
}

/** One training run of the sweep: every row it writes shares these fields. */
export type CellKey = Pick<ResultRow, 'task' | 'mixers' | 'budget' | 'seed' | 'trainLen' | 'lr'>;

/** Whether a cell already has rows (a resumed or split sweep skips it). */
export function cellDone(file: ResultsFile, cell: CellKey): boolean {
  return file.rows.some(
    (r) =>
      r.task === cell.task &&
      r.mixers === cell.mixers &&
      r.budget === cell.budget &&
      r.seed === cell.seed &&
      r.trainLen === cell.trainLen &&
      r.lr === cell.lr,
  );
}

/** Mean ± sample standard deviation of `values` (std 0 for a single value). */
export function meanStd(values: number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std, n };
}
