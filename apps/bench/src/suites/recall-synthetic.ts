// Untrained recall comparison: every mixer reads the same synthetic recall sequence (the demo's:
// facts with novel keys among distractors whose keys repeat a few directions), with keys and
// values as given — no projections, no training. It measures what each memory can hold, not what
// a trained model does; `recall` (with @ovq/train) is the trained comparison.
import type { OvqConfig } from '@ovq/core';
import {
  DEFAULT_RECALL_DEMO,
  type RecallDemoOptions,
  recallAccuracy,
  recallSequence,
} from '../recall-demo.js';
import { ovqStateNumbers } from '../registry/ovq.js';
import { consoleReporter, pct, type Reporter, si, TextTable } from '../report/format.js';
import { OVQ_ENGINE, runOvq } from './ovq-engine.js';

export type SyntheticRecallOptions = {
  sequence: RecallDemoOptions;
  seeds: number[];
  ovqCapacities: number[];
  /** Decay values tried for the decay-linear and GDN mixers (best is reported, like an LR sweep). */
  decays: number[];
  /** Write strengths β tried for GDN. */
  gdnBetas: number[];
};

export const DEFAULT_SYNTHETIC_RECALL: SyntheticRecallOptions = {
  sequence: DEFAULT_RECALL_DEMO,
  seeds: [1, 2, 3],
  ovqCapacities: [32, 64, 128, 256, 512],
  decays: [1, 0.9995, 0.998],
  gdnBetas: [1, 0.5],
};

export type RecallPoint = {
  mixer: string;
  /** What was varied (capacity, decay…) and the setting that won. */
  setting: string;
  stateNumbers: number;
  /** Mean over seeds of the fraction of facts recalled. */
  accuracy: number;
  perSeed: number[];
  implementation: string;
};

export type SyntheticRecallResult = {
  label: string;
  options: SyntheticRecallOptions;
  points: RecallPoint[];
  skipped: { mixer: string; reason: string }[];
};

type Fn = (...args: unknown[]) => { output: ArrayLike<number> };

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

export async function runSyntheticRecall(
  options: SyntheticRecallOptions = DEFAULT_SYNTHETIC_RECALL,
  reporter: Reporter = consoleReporter,
): Promise<SyntheticRecallResult> {
  const o = options.sequence;
  const T = o.seqLen;
  const d = o.dim;
  const dims = { keyDim: d, valueDim: d };
  const cases = options.seeds.map((seed) => recallSequence({ ...o, seed }));
  const score = (run: (c: (typeof cases)[number]) => ArrayLike<number>) =>
    cases.map((c) => recallAccuracy(Float64Array.from(run(c)), c.factValues, c.queryAt, d));
  const points: RecallPoint[] = [];
  const skipped: { mixer: string; reason: string }[] = [];
  const table = new TextTable([
    { title: 'mixer', width: 16 },
    { title: 'setting', width: 22 },
    { title: 'state', width: 8, align: 'right' },
    { title: 'recall', width: 7, align: 'right' },
    { title: 'implementation', width: 24 },
  ]);
  reporter.line(
    `Synthetic recall (untrained, keys as given): ${o.pairs} facts among ${T} tokens, d=${d}, ` +
      `distractors around ${o.distractorClusters} directions; mean over seeds ${options.seeds.join(',')}`,
  );
  reporter.line(table.header());
  const add = (p: RecallPoint) => {
    points.push(p);
    reporter.line(
      table.row([p.mixer, p.setting, si(p.stateNumbers), pct(p.accuracy), p.implementation]),
    );
  };

  for (const capacity of options.ovqCapacities) {
    reporter.progress(`recall: OVQ N=${capacity}…`);
    const config: OvqConfig = { capacity, chunkSize: o.chunkSize, beta: o.beta };
    const perSeed = score((c) => runOvq(c.seq, config).output);
    add({
      mixer: 'ovq',
      setting: `N=${capacity}`,
      stateNumbers: ovqStateNumbers(config, dims),
      accuracy: mean(perSeed),
      perSeed,
      implementation: `@ovq/core ${OVQ_ENGINE}`,
    });
  }

  const baselines = (await import('@ovq/baselines')) as Record<string, unknown>;
  const fn = (name: string) =>
    typeof baselines[name] === 'function' ? (baselines[name] as Fn) : undefined;
  const best = (
    mixer: string,
    settings: { label: string; run: (c: (typeof cases)[number]) => ArrayLike<number> }[],
    stateNumbers: number,
    implementation: string,
  ) => {
    let top: RecallPoint | null = null;
    for (const s of settings) {
      reporter.progress(`recall: ${mixer} ${s.label}…`);
      try {
        const perSeed = score(s.run);
        const p = {
          mixer,
          setting: s.label,
          stateNumbers,
          accuracy: mean(perSeed),
          perSeed,
          implementation,
        };
        if (!top || p.accuracy > top.accuracy) top = p;
      } catch (error) {
        skipped.push({ mixer: `${mixer} (${s.label})`, reason: String(error).slice(0, 200) });
      }
    }
    if (top) add({ ...top, setting: settings.length > 1 ? `best: ${top.setting}` : top.setting });
  };

  const softmax = fn('softmaxAttention');
  if (softmax) {
    // Same β and key normalisation as OVQ: softmax is OVQ with every token its own centroid.
    best(
      'softmax',
      [
        {
          label: `KV cache, β=${o.beta}`,
          run: (c) => softmax(c.seq, { beta: o.beta, normalize: true }).output,
        },
      ],
      T * 2 * d,
      '@ovq/baselines softmaxAttention',
    );
  } else
    skipped.push({ mixer: 'softmax', reason: '@ovq/baselines does not export softmaxAttention' });

  const linear = fn('linearAttention');
  if (linear) {
    best(
      'linear',
      [{ label: 'elu+1, normalised', run: (c) => linear(c.seq, undefined).output }],
      d * d + d,
      '@ovq/baselines linearAttention',
    );
  } else
    skipped.push({ mixer: 'linear', reason: '@ovq/baselines does not export linearAttention' });

  const decay = fn('decayLinearAttention');
  if (decay) {
    best(
      'decay-linear',
      options.decays.map((a) => ({
        label: `a=${a}`,
        run: (c) => decay({ ...c.seq, decay: new Float64Array(T).fill(a) }, undefined).output,
      })),
      d * d,
      '@ovq/baselines decayLinearAttention',
    );
  } else
    skipped.push({
      mixer: 'decay-linear',
      reason: '@ovq/baselines does not export decayLinearAttention',
    });

  const gdn = fn('gatedDeltaNet');
  if (gdn) {
    best(
      'gated-deltanet',
      options.decays.flatMap((a) =>
        options.gdnBetas.map((b) => ({
          label: `α=${a} β=${b}`,
          run: (c: (typeof cases)[number]) =>
            gdn(
              { ...c.seq, alpha: new Float64Array(T).fill(a), beta: new Float64Array(T).fill(b) },
              undefined,
            ).output,
        })),
      ),
      d * d,
      '@ovq/baselines gatedDeltaNet',
    );
  } else
    skipped.push({
      mixer: 'gated-deltanet',
      reason: '@ovq/baselines does not export gatedDeltaNet yet',
    });

  const kvm = fn('kvmAttention');
  const kvmSize = baselines.kvmStateSize as
    | ((d: object, c: object, T: number) => number)
    | undefined;
  if (kvm && kvmSize) {
    // Key-Value Means at the same row budgets as OVQ (one-block raw window, same β).
    for (const rows of options.ovqCapacities) {
      const config = {
        window: o.chunkSize,
        blockSize: o.chunkSize,
        beta: o.beta,
        budget: { kind: 'saturating', rows },
      };
      best(
        'kvm',
        [{ label: `rows=${rows}, window ${o.chunkSize}`, run: (c) => kvm(c.seq, config).output }],
        kvmSize(dims, config, T),
        '@ovq/baselines kvmAttention',
      );
    }
  } else skipped.push({ mixer: 'kvm', reason: '@ovq/baselines does not export kvmAttention' });

  for (const s of skipped) reporter.line(table.row([s.mixer, 'skipped', '', '', s.reason]));
  return {
    label: 'untrained synthetic recall (keys as given, no training)',
    options,
    points,
    skipped,
  };
}
