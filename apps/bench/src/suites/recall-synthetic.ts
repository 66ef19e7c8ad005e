// Matched-state recall without training. Every mixer reads the same synthetic recall sequences
// (facts hidden among distractors, queried at the end) with keys and values as given — no
// projections learned, no training: it measures what each memory can hold, not what a trained
// model learns (`recall` with @ovq/train is the trained comparison).
//
// Fairness rules:
// - Every mixer is swept over its own state size (OVQ capacity and chunk, KVM rows and window, VQ
//   codes and block, SWA window, feature / head dimension D for linear, decay and GDN) and its own
//   knobs (β for the softmax-read mixers, decay for decay / GDN, feature map for linear / decay / GDN).
// - Knobs and sizes are chosen on a validation split of sequences; the chosen setting is reported
//   on a separate test split (other seeds), so no mixer is scored on the data that tuned it.
// - Mixers are compared at equal state: for each budget B (numbers kept between tokens), each
//   mixer's best validation setting with state ≤ 1.1·B, then its test accuracy.
// - Two data sets: 'clustered' (distractor keys repeat 64 directions, facts are novel: suits a
//   farthest-point spawn) and 'iid' (every key an independent random unit vector: suits no rule).
import {
  decayLinearAttentionChunked,
  gatedDeltaNetChunked,
  kvmAttentionBlocked,
  kvmStateSize,
  linearAttentionChunked,
  softmaxAttentionTiled,
  softmaxStateSize,
  vqAttentionBlocked,
  vqStateSize,
} from '@ovq/baselines';
import { createRng, randn } from '@ovq/core/testing';
import {
  DEFAULT_RECALL_DEMO,
  type RecallDemoOptions,
  recallAccuracy,
  recallSequence,
} from '../recall-demo.js';
import { ovqStateNumbers } from '../registry/ovq.js';
import { consoleReporter, pct, type Reporter, si, TextTable } from '../report/format.js';
import { OVQ_ENGINE, runOvq } from './ovq-engine.js';

export type RecallDataset = 'clustered' | 'iid';

export type SyntheticRecallOptions = {
  sequence: RecallDemoOptions;
  datasets: RecallDataset[];
  /** Seeds whose sequences choose each mixer's size and knobs. */
  validationSeeds: number[];
  /** Other seeds, on which the chosen settings are reported. */
  testSeeds: number[];
  /** State budgets (numbers kept between tokens); a setting fits B when its state ≤ 1.1·B. */
  budgets: number[];
  /** Logit scales tried by every softmax-read mixer (OVQ, KVM, VQ, SWA, softmax). */
  betas: number[];
  ovqCapacities: number[];
  ovqChunks: number[];
  /** KVM compressed rows and raw windows (= block size). */
  kvmRows: number[];
  kvmWindows: number[];
  vqCodes: number[];
  vqBlocks: number[];
  swaWindows: number[];
  /** Feature / head dimension D of linear, decay-linear and GDN (state D·dv). */
  featureDims: number[];
  linearMaps: FeatureMap[];
  decayMaps: FeatureMap[];
  decays: number[];
  gdnWriteStrengths: number[];
};

/** Feature maps φ(x) applied to queries and keys (P: a fixed random D×d Gaussian, scaled 1/√d). */
export type FeatureMap = 'proj' | 'relu' | 'elu+1';

export const DEFAULT_SYNTHETIC_RECALL: SyntheticRecallOptions = {
  sequence: DEFAULT_RECALL_DEMO,
  datasets: ['clustered', 'iid'],
  validationSeeds: [1, 2, 3],
  testSeeds: [101, 102, 103, 104],
  budgets: [2048, 4096, 8192, 16384, 32768],
  betas: [8, 16, 24, 32],
  ovqCapacities: [16, 32, 64, 128, 256, 512],
  ovqChunks: [16, 32, 64],
  kvmRows: [16, 32, 64, 128, 256, 512],
  kvmWindows: [16, 32, 64],
  vqCodes: [16, 32, 64, 128, 256, 512],
  vqBlocks: [16, 64],
  swaWindows: [32, 64, 128, 256, 512],
  featureDims: [32, 64, 128, 256, 512, 1024],
  linearMaps: ['elu+1', 'relu'],
  decayMaps: ['proj', 'relu'],
  decays: [1, 0.9995, 0.998],
  gdnWriteStrengths: [1, 0.5],
};

export type RecallPoint = {
  mixer: string;
  /** The chosen size and knobs. */
  setting: string;
  stateNumbers: number;
  /** Test-split accuracy (mean over test seeds of the fraction of facts recalled). */
  accuracy: number;
  perSeed: number[];
  implementation: string;
  dataset?: RecallDataset;
  /** The budget this point was chosen for (absent: unbounded reference). */
  budget?: number;
  /** Accuracy on the validation split, which chose the setting. */
  validation?: number;
};

export type BudgetComparison = {
  dataset: RecallDataset;
  budget: number;
  /** Test accuracy per mixer, best first. */
  ranking: { mixer: string; accuracy: number; setting: string; stateNumbers: number }[];
  winner: string;
  /** Winner minus runner-up, in accuracy (0.05 = 5 points). */
  margin: number;
  /** OVQ minus the best other mixer (negative: OVQ loses), and its standard error (binomial). */
  ovqGap: number | null;
  ovqGapSe: number | null;
  bestOther: string | null;
};

export type SyntheticRecallResult = {
  label: string;
  options: SyntheticRecallOptions;
  /** One point per (data set, budget, mixer): that mixer's best fitting setting, on the test split. */
  points: RecallPoint[];
  /** Full softmax (KV cache grows with T): the unbounded reference per data set. */
  references: RecallPoint[];
  comparisons: BudgetComparison[];
  /** Settings evaluated on the validation split (all data sets). */
  candidates: number;
  skipped: { mixer: string; reason: string }[];
};

type Case = ReturnType<typeof recallSequence>;
type Seq32 = {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  seqLen: number;
  keyDim: number;
  valueDim: number;
};

type Candidate = {
  mixer: string;
  setting: string;
  stateNumbers: number;
  implementation: string;
  run: (seq: Seq32) => ArrayLike<number>;
};

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const TOLERANCE = 1.1;

/** A fixed random D×d map per (D, d): the same "weights" for every sequence. */
const projections = new Map<string, Float32Array>();
function projection(D: number, d: number): Float32Array {
  const key = `${D}x${d}`;
  let P = projections.get(key);
  if (!P) {
    P = Float32Array.from(randn(createRng(0xfea7 + D), D * d), (x) => x / Math.sqrt(d));
    projections.set(key, P);
  }
  return P;
}

/** φ(x) for every row of x [T, d] → [T, D]. 'proj' with D = d is the identity (keys as given). */
export function featureMap(x: Float32Array, T: number, d: number, D: number, map: FeatureMap) {
  const out = new Float32Array(T * D);
  if (map === 'proj' && D === d) {
    out.set(x);
    return out;
  }
  const P = projection(D, d);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < D; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += P[i * d + j] * x[t * d + j];
      // elu+1 is applied inside linearAttention itself: 'elu+1' passes the projection through.
      out[t * D + i] = map === 'relu' ? Math.max(0, s) : s;
    }
  }
  return out;
}

function candidates(o: SyntheticRecallOptions): Candidate[] {
  const s = o.sequence;
  const T = s.seqLen;
  const d = s.dim;
  const dims = { keyDim: d, valueDim: d };
  const out: Candidate[] = [];
  const beta = (b: number) => `β=${b}`;
  for (const C of o.ovqChunks) {
    for (const N of o.ovqCapacities) {
      for (const b of o.betas) {
        const config = { capacity: N, chunkSize: C, beta: b };
        out.push({
          mixer: 'ovq',
          setting: `N=${N} C=${C} ${beta(b)}`,
          stateNumbers: ovqStateNumbers(config, dims),
          implementation: `@ovq/core ${OVQ_ENGINE}`,
          run: (x) => runOvq(x, config).output,
        });
      }
    }
  }
  for (const W of o.kvmWindows) {
    for (const rows of o.kvmRows) {
      for (const b of o.betas) {
        const config = {
          window: W,
          blockSize: W,
          beta: b,
          budget: { kind: 'saturating' as const, rows },
        };
        out.push({
          mixer: 'kvm',
          setting: `rows=${rows} window=${W} ${beta(b)}`,
          stateNumbers: kvmStateSize(dims, config, T),
          implementation: '@ovq/baselines kvmAttentionBlocked',
          run: (x) => kvmAttentionBlocked(x, config).output,
        });
      }
    }
  }
  for (const L of o.vqBlocks) {
    for (const S of o.vqCodes) {
      // Untrained VQ: the codebook is S fixed random unit vectors (a trained one is learned).
      const codebook = Float32Array.from(randn(createRng(0xc0de + S), S * d));
      for (let r = 0; r < S; r++) {
        const row = codebook.subarray(r * d, (r + 1) * d);
        const n = Math.hypot(...row);
        for (let j = 0; j < d; j++) row[j] /= n;
      }
      for (const b of o.betas) {
        const config = { codebookSize: S, blockLength: L, beta: b };
        out.push({
          mixer: 'vq',
          setting: `codes=${S} block=${L} ${beta(b)} (random codebook)`,
          stateNumbers: vqStateSize(dims, config, T),
          implementation: '@ovq/baselines vqAttentionBlocked',
          run: (x) => vqAttentionBlocked({ ...x, codebook }, config).output,
        });
      }
    }
  }
  for (const W of o.swaWindows) {
    for (const b of o.betas) {
      const config = { window: W, beta: b, normalize: true };
      out.push({
        mixer: 'swa',
        setting: `window=${W} ${beta(b)}`,
        stateNumbers: softmaxStateSize(dims, config, T),
        implementation: '@ovq/baselines softmaxAttentionTiled (window)',
        run: (x) => softmaxAttentionTiled(x, config).output,
      });
    }
  }
  const mapped = (x: Seq32, D: number, map: FeatureMap) => ({
    ...x,
    keyDim: D,
    q: featureMap(x.q, T, d, D, map),
    k: featureMap(x.k, T, d, D, map),
  });
  for (const D of o.featureDims) {
    for (const map of o.linearMaps) {
      out.push({
        mixer: 'linear',
        setting: `D=${D} φ=${map === 'elu+1' ? 'elu+1∘P' : 'relu∘P'}`,
        stateNumbers: D * d + D,
        implementation:
          map === 'elu+1'
            ? '@ovq/baselines linearAttentionChunked'
            : '@ovq/baselines decayLinearAttentionChunked (a=1)',
        // relu features: unnormalised (a positive per-query scale cannot change the nearest value).
        run: (x) =>
          map === 'elu+1'
            ? linearAttentionChunked(mapped(x, D, map)).output
            : decayLinearAttentionChunked({ ...mapped(x, D, map), decay: ones(T) }).output,
      });
    }
    for (const map of o.decayMaps) {
      if (map === 'proj' && D > d) continue; // a linear map to D > d adds no capacity (rank d)
      const phi = map === 'proj' ? (D === d ? 'keys as given' : 'P') : 'relu∘P';
      for (const a of o.decays) {
        out.push({
          mixer: 'decay-linear',
          setting: `D=${D} φ=${phi} a=${a}`,
          stateNumbers: D * d,
          implementation: '@ovq/baselines decayLinearAttentionChunked',
          run: (x) =>
            decayLinearAttentionChunked({ ...mapped(x, D, map), decay: filled(T, a) }).output,
        });
        for (const w of o.gdnWriteStrengths) {
          out.push({
            mixer: 'gated-deltanet',
            setting: `D=${D} φ=${phi} α=${a} β_w=${w}`,
            stateNumbers: D * d,
            implementation: '@ovq/baselines gatedDeltaNetChunked',
            run: (x) =>
              gatedDeltaNetChunked({
                ...mapped(x, D, map),
                alpha: filled(T, a),
                beta: filled(T, w),
              }).output,
          });
        }
      }
    }
  }
  return out;
}

const filledCache = new Map<string, Float32Array>();
function filled(T: number, value: number): Float32Array {
  const key = `${T}:${value}`;
  let x = filledCache.get(key);
  if (!x) {
    x = new Float32Array(T).fill(value);
    filledCache.set(key, x);
  }
  return x;
}
const ones = (T: number) => filled(T, 1);

function to32(c: Case): Seq32 {
  return {
    ...c.seq,
    q: Float32Array.from(c.seq.q),
    k: Float32Array.from(c.seq.k),
    v: Float32Array.from(c.seq.v),
  };
}

/** Binomial standard error of a difference of two accuracies over n queries each. */
function gapSe(a: number, b: number, n: number): number {
  return Math.sqrt((a * (1 - a) + b * (1 - b)) / n);
}

export async function runSyntheticRecall(
  options: SyntheticRecallOptions = DEFAULT_SYNTHETIC_RECALL,
  reporter: Reporter = consoleReporter,
): Promise<SyntheticRecallResult> {
  const o = options.sequence;
  const d = o.dim;
  const all = candidates(options);
  const maxBudget = Math.max(...options.budgets) * TOLERANCE;
  const pool = all.filter((c) => c.stateNumbers <= maxBudget);
  const points: RecallPoint[] = [];
  const references: RecallPoint[] = [];
  const comparisons: BudgetComparison[] = [];
  const skipped: { mixer: string; reason: string }[] = [];
  const mixers = [...new Set(pool.map((c) => c.mixer))];
  reporter.line(
    `Matched-state recall (untrained, keys as given): ${o.pairs} facts among ${o.seqLen} tokens, d=${d}; ` +
      `settings chosen on validation seeds ${options.validationSeeds.join(',')}, reported on test seeds ${options.testSeeds.join(',')}; ` +
      `${pool.length} settings per data set`,
  );
  const table = new TextTable([
    { title: 'data', width: 9 },
    { title: 'budget', width: 6, align: 'right' },
    { title: 'mixer', width: 14 },
    { title: 'state', width: 6, align: 'right' },
    { title: 'val', width: 6, align: 'right' },
    { title: 'test', width: 6, align: 'right' },
    { title: 'chosen setting', width: 40 },
  ]);
  let done = 0;
  const total = options.datasets.length * pool.length;
  const started = performance.now();
  let lastLine = Number.NEGATIVE_INFINITY;
  for (const dataset of options.datasets) {
    const cases = (seeds: number[]) =>
      seeds.map((seed) => {
        const c = recallSequence({ ...o, seed, keys: dataset });
        return { c, x: to32(c) };
      });
    const val = cases(options.validationSeeds);
    const test = cases(options.testSeeds);
    const score = (cand: Candidate, split: typeof val) =>
      split.map(({ c, x }) =>
        recallAccuracy(Float64Array.from(cand.run(x)), c.factValues, c.queryAt, d),
      );
    // Validation accuracy of every setting (a throwing setting is listed, never dropped silently).
    const valAcc = new Map<Candidate, number>();
    for (const cand of pool) {
      done++;
      // A line when 2 s have passed since the last one (one setting takes 0.05–1 s).
      const now = performance.now();
      if (now - lastLine >= 2000 || done === 1) {
        lastLine = now;
        reporter.progress(
          `recall ${dataset}: ${done}/${total} settings (${cand.mixer} ${cand.setting}) ${((now - started) / 1000).toFixed(0)} s`,
          true,
        );
      }
      try {
        valAcc.set(cand, mean(score(cand, val)));
      } catch (error) {
        skipped.push({
          mixer: `${cand.mixer} (${cand.setting}, ${dataset})`,
          reason: String(error).slice(0, 200),
        });
      }
    }
    const testCache = new Map<Candidate, number[]>();
    const testOf = (cand: Candidate) => {
      let r = testCache.get(cand);
      if (!r) {
        r = score(cand, test);
        testCache.set(cand, r);
      }
      return r;
    };
    reporter.line(table.header());
    for (const budget of options.budgets) {
      const ranking: BudgetComparison['ranking'] = [];
      for (const mixer of mixers) {
        const fits = pool.filter(
          (c) => c.mixer === mixer && valAcc.has(c) && c.stateNumbers <= budget * TOLERANCE,
        );
        if (!fits.length) continue;
        // Best on validation; ties go to the smaller state.
        const best = fits.reduce((a, c) =>
          valAcc.get(c)! > valAcc.get(a)! ||
          (valAcc.get(c) === valAcc.get(a) && c.stateNumbers < a.stateNumbers)
            ? c
            : a,
        );
        const perSeed = testOf(best);
        const p: RecallPoint = {
          mixer,
          setting: best.setting,
          stateNumbers: best.stateNumbers,
          accuracy: mean(perSeed),
          perSeed,
          implementation: best.implementation,
          dataset,
          budget,
          validation: valAcc.get(best),
        };
        points.push(p);
        ranking.push({
          mixer,
          accuracy: p.accuracy,
          setting: p.setting,
          stateNumbers: p.stateNumbers,
        });
        reporter.line(
          table.row([
            dataset,
            si(budget),
            mixer,
            si(p.stateNumbers),
            pct(p.validation),
            pct(p.accuracy),
            p.setting,
          ]),
        );
      }
      ranking.sort((a, b) => b.accuracy - a.accuracy);
      const ovq = ranking.find((r) => r.mixer === 'ovq');
      const other = ranking.find((r) => r.mixer !== 'ovq');
      const n = o.pairs * options.testSeeds.length;
      comparisons.push({
        dataset,
        budget,
        ranking,
        winner: ranking[0]?.mixer ?? '—',
        margin: ranking.length > 1 ? ranking[0].accuracy - ranking[1].accuracy : 0,
        ovqGap: ovq && other ? ovq.accuracy - other.accuracy : null,
        ovqGapSe: ovq && other ? gapSe(ovq.accuracy, other.accuracy, n) : null,
        bestOther: other?.mixer ?? null,
      });
    }
    // The unbounded reference: full softmax (KV cache of T·(dk+dv) numbers), β chosen on validation.
    reporter.progress(`recall ${dataset}: full softmax reference…`, true);
    const full = options.betas.map((b) => ({
      mixer: 'softmax',
      setting: `KV cache, β=${b}`,
      stateNumbers: softmaxStateSize({ keyDim: d, valueDim: d }, undefined, o.seqLen),
      implementation: '@ovq/baselines softmaxAttentionTiled',
      run: (x: Seq32) => softmaxAttentionTiled(x, { beta: b, normalize: true }).output,
    }));
    const fullVal = full.map((c) => mean(score(c, val)));
    const bestFull = full[fullVal.indexOf(Math.max(...fullVal))];
    const perSeed = score(bestFull, test);
    references.push({
      mixer: 'softmax',
      setting: bestFull.setting,
      stateNumbers: bestFull.stateNumbers,
      accuracy: mean(perSeed),
      perSeed,
      implementation: bestFull.implementation,
      dataset,
      validation: Math.max(...fullVal),
    });
    reporter.line(
      `${dataset}: full softmax (unbounded, ${si(bestFull.stateNumbers)} numbers, ${bestFull.setting}): ${pct(mean(perSeed))} on the test split`,
    );
    reporter.line('');
  }
  for (const s of skipped) reporter.line(`skipped ${s.mixer}: ${s.reason}`);
  return {
    label: 'untrained matched-state recall (keys as given, no training)',
    options,
    points,
    references,
    comparisons,
    candidates: pool.length * options.datasets.length,
    skipped,
  };
}
