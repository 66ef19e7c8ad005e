// The main job until the benchmark runner lands: OVQ-attention and causal softmax attention on
// one synthetic recall sequence, reporting how much state each keeps and how well each recalls.

import { type OvqConfig, ovqAttentionReference } from '@ovq/core';
import { createRng, randn } from '@ovq/core/testing';

export type RecallDemoOptions = {
  seqLen: number;
  dim: number;
  pairs: number;
  capacity: number;
  chunkSize: number;
  beta: number;
  /** Distinct key directions the distractor tokens are drawn around. */
  distractorClusters: number;
  seed: number;
  /**
   * 'clustered' (default): distractor keys repeat `distractorClusters` directions (+ noise), facts
   * are novel — a farthest-point spawn rule sees facts as outliers. 'iid': every key is an
   * independent random unit vector, so facts look like any other token to every spawn rule.
   */
  keys?: 'clustered' | 'iid';
};

export const DEFAULT_RECALL_DEMO: RecallDemoOptions = {
  seqLen: 4096,
  dim: 32,
  pairs: 48,
  capacity: 256,
  chunkSize: 64,
  beta: 24,
  distractorClusters: 64,
  seed: 1,
};

export type RecallDemoResult = {
  options: RecallDemoOptions;
  ovq: { recall: number; stateNumbers: number; dictionarySize: number; seconds: number };
  softmax: { recall: number; stateNumbers: number; seconds: number };
  /** RMS ratio ‖ovq − softmax‖/‖softmax‖ over the query positions. */
  disagreement: number;
};

function unitRows(rng: () => number, rows: number, dim: number): Float64Array {
  const x = randn(rng, rows * dim);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * dim, (r + 1) * dim);
    const n = Math.hypot(...row);
    for (let d = 0; d < dim; d++) row[d] /= n;
  }
  return x;
}

/**
 * A recall sequence: `pairs` (key, value) facts with novel keys scattered over the first three
 * quarters among distractor tokens, then one query per fact at the end (q = the fact's key).
 */
export function recallSequence(o: RecallDemoOptions) {
  const rng = createRng(o.seed);
  const { seqLen: T, dim, pairs } = o;
  // Distractors repeat a small vocabulary of key directions (as trained keys do); facts are novel.
  const vocab = unitRows(rng, o.distractorClusters, dim);
  const q = unitRows(rng, T, dim);
  const k = new Float64Array(T * dim);
  const noise = randn(rng, T * dim);
  if (o.keys === 'iid') k.set(unitRows(rng, T, dim));
  else {
    for (let t = 0; t < T; t++) {
      const c = Math.floor(rng() * o.distractorClusters);
      for (let d = 0; d < dim; d++) k[t * dim + d] = vocab[c * dim + d] + 0.1 * noise[t * dim + d];
    }
  }
  const v = randn(rng, T * dim);
  const factKeys = unitRows(rng, pairs, dim);
  const factValues = randn(rng, pairs * dim);
  const slots = new Set<number>();
  while (slots.size < pairs) slots.add(Math.floor(rng() * ((3 * T) / 4)));
  const factAt = [...slots];
  const queryAt = factAt.map((_, i) => T - pairs + i);
  factAt.forEach((t, i) => {
    k.set(factKeys.subarray(i * dim, (i + 1) * dim), t * dim);
    v.set(factValues.subarray(i * dim, (i + 1) * dim), t * dim);
    q.set(factKeys.subarray(i * dim, (i + 1) * dim), queryAt[i] * dim);
  });
  return { seq: { q, k, v, seqLen: T, keyDim: dim, valueDim: dim }, factValues, queryAt };
}

/** Fraction of queries whose output is closer (cosine) to the right fact's value than to any other. */
export function recallAccuracy(
  output: Float64Array,
  factValues: Float64Array,
  queryAt: number[],
  dim: number,
): number {
  let hits = 0;
  queryAt.forEach((t, i) => {
    const y = output.subarray(t * dim, (t + 1) * dim);
    let best = -1;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let j = 0; j < queryAt.length; j++) {
      const f = factValues.subarray(j * dim, (j + 1) * dim);
      let s = 0;
      for (let d = 0; d < dim; d++) s += y[d] * f[d];
      const score = s / (Math.hypot(...f) || 1);
      if (score > bestScore) [best, bestScore] = [j, score];
    }
    if (best === i) hits++;
  });
  return hits / queryAt.length;
}

export function runRecallDemo(options: RecallDemoOptions = DEFAULT_RECALL_DEMO): RecallDemoResult {
  const { seq, factValues, queryAt } = recallSequence(options);
  const { dim, capacity, chunkSize, beta, seqLen: T } = options;
  const config: OvqConfig = { chunkSize, capacity, beta };
  let start = performance.now();
  const ovq = ovqAttentionReference(seq, config);
  const ovqSeconds = (performance.now() - start) / 1000;
  // OVQ with growth 'full' and capacity ≥ T is exactly causal softmax attention (ALGORITHM.md §4).
  start = performance.now();
  const softmax = ovqAttentionReference(seq, { chunkSize, capacity: T, beta, growth: 'full' });
  const softmaxSeconds = (performance.now() - start) / 1000;
  let num = 0;
  let den = 0;
  for (const t of queryAt) {
    for (let d = 0; d < dim; d++) {
      num += (ovq.output[t * dim + d] - softmax.output[t * dim + d]) ** 2;
      den += softmax.output[t * dim + d] ** 2;
    }
  }
  return {
    options,
    ovq: {
      recall: recallAccuracy(ovq.output, factValues, queryAt, dim),
      stateNumbers: capacity * (2 * dim + 1) + chunkSize * 2 * dim,
      dictionarySize: ovq.state.size,
      seconds: ovqSeconds,
    },
    softmax: {
      recall: recallAccuracy(softmax.output, factValues, queryAt, dim),
      stateNumbers: T * 2 * dim,
      seconds: softmaxSeconds,
    },
    disagreement: Math.sqrt(num / den),
  };
}

export function formatRecallDemo(r: RecallDemoResult): string {
  const o = r.options;
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return [
    `Synthetic recall: ${o.pairs} facts hidden among ${o.seqLen} tokens (d=${o.dim}, distractor keys around ${o.distractorClusters} directions), queried at the end.`,
    '',
    'mixer                      state (numbers)   recall   time',
    `OVQ (N=${o.capacity}, C=${o.chunkSize}, n=${r.ovq.dictionarySize})`.padEnd(27) +
      `${r.ovq.stateNumbers}`.padStart(15) +
      pct(r.ovq.recall).padStart(9) +
      `${r.ovq.seconds.toFixed(2)}s`.padStart(8),
    'softmax attention (KV)'.padEnd(27) +
      `${r.softmax.stateNumbers}`.padStart(15) +
      pct(r.softmax.recall).padStart(9) +
      `${r.softmax.seconds.toFixed(2)}s`.padStart(8),
    '',
    `OVQ keeps ${(r.ovq.stateNumbers / r.softmax.stateNumbers).toFixed(3)}× the softmax state; ` +
      `output disagreement at the queries (RMS ratio) ${r.disagreement.toFixed(3)}.`,
    '(float64 reference implementations; times are not benchmarks)',
  ].join('\n');
}
