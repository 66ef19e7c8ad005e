// Timing: warm-up runs (JIT, caches, pipeline compilation) are discarded, then each repeat is
// timed on its own; reports use the median and the 20th/80th percentiles, which a single slow
// repeat on a shared machine cannot move much.

export type TimingStats = {
  /** Seconds per call. */
  median: number;
  p20: number;
  p80: number;
  min: number;
  max: number;
  repeats: number;
  warmup: number;
  samples: number[];
};

/** Quantile q ∈ [0, 1] of ascending `sorted`, linear between order statistics (R type 7). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

export function summarize(samples: number[], warmup = 0): TimingStats {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    median: quantile(sorted, 0.5),
    p20: quantile(sorted, 0.2),
    p80: quantile(sorted, 0.8),
    min: sorted[0] ?? Number.NaN,
    max: sorted[sorted.length - 1] ?? Number.NaN,
    repeats: samples.length,
    warmup,
    samples,
  };
}

export type TimeOptions = {
  warmup: number;
  repeats: number;
  /** Stop adding repeats once this many seconds were spent timing (at least `minRepeats` run). */
  maxSeconds: number;
  minRepeats: number;
  clock?: () => number;
};

/** Runs `fn` `warmup` times untimed, then times up to `repeats` calls. */
export async function timeRepeats(
  fn: () => unknown | Promise<unknown>,
  options: TimeOptions,
): Promise<TimingStats> {
  const clock = options.clock ?? (() => performance.now() / 1000);
  for (let i = 0; i < options.warmup; i++) await fn();
  const samples: number[] = [];
  let spent = 0;
  while (samples.length < options.repeats) {
    const start = clock();
    await fn();
    const s = clock() - start;
    samples.push(s);
    spent += s;
    if (spent > options.maxSeconds && samples.length >= options.minRepeats) break;
  }
  return summarize(samples, options.warmup);
}
