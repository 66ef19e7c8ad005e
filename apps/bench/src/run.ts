// Runs one suite end to end: registry, suite(s), JSON + HTML report, optional comparison.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compareReports, formatComparison } from './compare.js';
import type { RecallDemoOptions } from './recall-demo.js';
import { loadRegistry, selectImplementations } from './registry/index.js';
import { consoleReporter, type Reporter } from './report/format.js';
import { writeHtml } from './report/html.js';
import {
  type BenchReport,
  gitInfo,
  machineInfo,
  packageVersions,
  REPORT_SCHEMA,
  readReport,
  writeJson,
} from './report/json.js';
import { type AblateOptions, DEFAULT_ABLATE, runAblate } from './suites/ablate.js';
import { headlines } from './suites/headlines.js';
import { DEFAULT_LM, type LmOptions, runLm } from './suites/lm.js';
import { QUICK_ABLATE, QUICK_RECALL, QUICK_SPEED, quickImplementations } from './suites/quick.js';
import { DEFAULT_RECALL, type RecallOptions, runRecall } from './suites/recall.js';
import {
  DEFAULT_SYNTHETIC_RECALL,
  runSyntheticRecall,
  type SyntheticRecallOptions,
} from './suites/recall-synthetic.js';
import { DEFAULT_SPEED, loadNow, runSpeed, type SpeedOptions } from './suites/speed.js';
import { loadTrainApi } from './suites/train-api.js';

export type Suite = 'quick' | 'speed' | 'recall' | 'ablate' | 'lm';

/** Bad input from the command line (or a caller): printed without a stack, exit code 2. */
export class UsageError extends Error {}

export type RunOptions = {
  suite: Suite;
  out: string;
  /** Overrides of the suite's speed settings (from flags). */
  speed: Partial<SpeedOptions>;
  seeds?: number[];
  /** Overrides of the synthetic recall sequence (recall fallback, ablate, quick). */
  sequence?: Partial<RecallDemoOptions>;
  impl: string[];
  /** Overrides for the trained suites (recall, lm). */
  train?: { steps?: number; learningRates?: number[]; mixers?: string[] };
  base?: string;
  command: string[];
};

/** The trainer's regime results folder, relative to this file (src/ or dist/ of apps/bench). */
const TRAINER_RESULTS = join(dirname(fileURLToPath(import.meta.url)), '../../trainer/results');

/** Every regime results file the trainer has written: regime.json first, then pilots by name. */
export function regimeFiles(): string[] {
  if (!existsSync(TRAINER_RESULTS)) return [];
  return readdirSync(TRAINER_RESULTS)
    .filter((f) => /^regime.*\.json$/.test(f))
    .sort((a, b) => (a === 'regime.json' ? -1 : b === 'regime.json' ? 1 : a.localeCompare(b)))
    .map((f) => join(TRAINER_RESULTS, f));
}

/** Other tools' results the report shows when they exist (their JSON is embedded as it is). */
function attachments(out: string): NonNullable<BenchReport['attachments']> {
  const found: NonNullable<BenchReport['attachments']> = [];
  const sources: [string, string][] = [
    ['Training speed (ovq-bench train-speed)', join(out, 'train-speed.json')],
    ...regimeFiles().map((path): [string, string] => [
      `OVQ in its own regime (apps/trainer/results/${relative(TRAINER_RESULTS, path)})`,
      path,
    ]),
  ];
  for (const [title, path] of sources) {
    if (!existsSync(path)) continue;
    try {
      found.push({
        title,
        path: relative(process.cwd(), path),
        data: JSON.parse(readFileSync(path, 'utf8')),
      });
    } catch (error) {
      found.push({ title, path, data: { error: `unreadable: ${String(error)}` } });
    }
  }
  return found;
}

export async function runSuite(
  o: RunOptions,
  reporter: Reporter = consoleReporter,
): Promise<{ report: BenchReport; json: string; html: string }> {
  const started = performance.now();
  const loadStart = loadNow();
  const quick = o.suite === 'quick';
  const speedOptions: SpeedOptions = { ...(quick ? QUICK_SPEED : DEFAULT_SPEED), ...o.speed };
  const wantsRegistry = quick || o.suite === 'speed';
  if (wantsRegistry) reporter.progress('loading the implementations (registry)…');
  const registry = wantsRegistry
    ? await loadRegistry({ webgpu: speedOptions.webgpu, tfjs: speedOptions.tfjs })
    : { implementations: [], skipped: [], adapters: [] };
  if (o.impl.length && !wantsRegistry)
    throw new UsageError(`--impl applies to quick and speed, not ${o.suite}`);
  const known = [...registry.implementations, ...registry.skipped].map((i) => i.name);
  const unknown = o.impl.filter((f) => !known.some((n) => n.includes(f)));
  if (unknown.length) {
    throw new UsageError(
      `--impl ${unknown.map((f) => `"${f}"`).join(', ')} matches no implementation; known: ${known.join(', ')}`,
    );
  }
  let impls = selectImplementations(registry.implementations, o.impl);
  if (quick) impls = quickImplementations(impls);
  const report: BenchReport = {
    schema: REPORT_SCHEMA,
    suite: o.suite,
    createdAt: new Date().toISOString(),
    command: o.command,
    wallSeconds: 0,
    machine: machineInfo(),
    adapters: registry.adapters,
    versions: packageVersions(),
    git: gitInfo(),
    config: {},
    implementations: impls.map(({ name, mixer, implementation, config }) => ({
      name,
      mixer,
      implementation,
      config,
    })),
    skipped: selectImplementations(registry.skipped, o.impl),
  };
  reporter.line(
    `ovq-bench ${o.suite} — ${report.machine.cpuModel} ×${report.machine.cpuCount}, Node ${report.machine.node}, commit ${report.git.commit?.slice(0, 10) ?? 'unknown'}`,
  );
  reporter.line('');
  if (wantsRegistry) {
    report.config.speed = speedOptions;
    report.speed = await runSpeed(impls, report.skipped, speedOptions, reporter);
    reporter.line('');
  }
  const recallOptions: SyntheticRecallOptions = {
    ...(quick ? QUICK_RECALL : DEFAULT_SYNTHETIC_RECALL),
    // --seeds: the validation seeds; the test seeds are the same +100 (never overlapping).
    ...(o.seeds ? { validationSeeds: o.seeds, testSeeds: o.seeds.map((s) => s + 100) } : {}),
  };
  recallOptions.sequence = { ...recallOptions.sequence, ...o.sequence };
  const t = o.train ?? {};
  if (o.suite === 'recall') {
    const recall: RecallOptions = {
      ...DEFAULT_RECALL,
      ...(t.steps ? { steps: t.steps } : {}),
      ...(t.learningRates ? { learningRates: t.learningRates } : {}),
      mixers: DEFAULT_RECALL.mixers.filter((m) => !t.mixers || t.mixers.includes(m.mixer)),
    };
    report.config.recall = recall;
    report.recall = await runRecall(recall, reporter);
    reporter.line('');
  }
  if (quick || o.suite === 'recall') {
    // The untrained matched-state sweep: small in quick, full in recall (labelled untrained).
    if (quick) {
      const { api, missing } = await loadTrainApi();
      const reason = api.trainRecall
        ? 'trained recall is not part of quick (run `ovq-bench recall`)'
        : `@ovq/train not available (${missing ?? '@ovq/train does not export trainRecall'})`;
      report.recall = { status: 'skipped', reason };
      reporter.line(
        `recall (trained): skipped: ${reason}; showing the untrained synthetic comparison`,
      );
    }
    report.config.syntheticRecall = recallOptions;
    report.syntheticRecall = await runSyntheticRecall(recallOptions, reporter);
    reporter.line('');
  }
  if (quick || o.suite === 'ablate') {
    const ablate: AblateOptions = {
      ...(quick ? QUICK_ABLATE : DEFAULT_ABLATE),
      ...(o.seeds ? { seeds: o.seeds } : {}),
    };
    ablate.sequence = { ...ablate.sequence, ...o.sequence };
    report.config.ablate = ablate;
    report.ablate = runAblate(ablate, reporter);
    reporter.line('');
  }
  if (o.suite === 'lm') {
    const lm: LmOptions = {
      ...DEFAULT_LM,
      ...(t.steps ? { steps: t.steps } : {}),
      ...(t.learningRates ? { learningRate: t.learningRates[0] } : {}),
      ...(t.mixers ? { mixers: t.mixers } : {}),
    };
    report.config.lm = lm;
    report.lm = await runLm(lm, reporter);
  }
  if (quick) {
    report.headlines = headlines(report.speed, report.syntheticRecall);
    reporter.line('Headline claims:');
    for (const h of report.headlines) {
      reporter.line(`  [${h.verdict}] ${h.claim} — ${h.evidence}`);
    }
    reporter.line('');
  }
  report.wallSeconds = (performance.now() - started) / 1000;
  report.load = { start: loadStart, end: loadNow() };
  report.attachments = attachments(o.out);
  const json = join(o.out, `${o.suite}.json`);
  const html = join(o.out, `${o.suite}.html`);
  writeJson(json, report);
  writeHtml(html, report);
  reporter.line(`wrote ${json} and ${html} (${report.wallSeconds.toFixed(0)} s)`);
  if (o.base) {
    reporter.line('');
    reporter.line(formatComparison(compareReports(readReport(o.base), report), o.base, json));
  }
  return { report, json, html };
}
