// The work behind each ovq-train command.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  createTasks,
  createTfjsMixer,
  type Decoder,
  type EvalResult,
  evaluate,
  evaluationBatch,
  loadTrainedModel,
  type NeedleHeadTrace,
  needleAccuracy,
  needleAnswers,
  niahSpecVocabulary,
  summarizeNeedleTraces,
  type TaskSpec,
  type TokenBatch,
  type TrainConfig,
  traceNeedles,
  train,
  withOvqBetaScale,
  withOvqCapacity,
  withOvqReserve,
  withOvqSpawnDistance,
} from '@ovq/train';
import * as tf from '@tensorflow/tfjs';
import { DEFAULT_BACKEND, useBackend } from './backend.js';
import { BACKENDS, type RunFlags } from './config.js';
import {
  choiceFlag,
  fractionListFlag,
  integerFlag,
  integerListFlag,
  numberFlag,
  UsageError,
} from './flags.js';
import type { Progress } from './progress.js';
import { RUN_FILES } from './run-folder.js';

/** One evaluation as text: loss and metric, accuracy by position quarter, OVQ dictionary health. */
export function describeEval(r: EvalResult): string {
  const metric =
    r.metricName === 'accuracy'
      ? `accuracy ${(100 * r.metric).toFixed(1)}%`
      : `mse ${r.metric.toFixed(4)}`;
  const lines = [`  len ${String(r.seqLen).padStart(5)}  loss ${r.loss.toFixed(4)}  ${metric}`];
  if (r.byPosition) {
    const quarters = [0, 1, 2, 3].map((q) => {
      const part = r
        .byPosition!.slice((q * r.seqLen) / 4, ((q + 1) * r.seqLen) / 4)
        .filter((x) => !Number.isNaN(x));
      return part.length > 0
        ? `${(100 * (part.reduce((a, b) => a + b, 0) / part.length)).toFixed(1)}%`
        : '—';
    });
    lines.push(`    accuracy by position quarter: ${quarters.join(' | ')}`);
  }
  for (const h of r.health ?? []) {
    lines.push(
      `    layer ${h.layer} (${h.kind}) dictionary: ${h.size.toFixed(1)}/${h.capacity} rows, counts min/mean/max ${h.countMin}/${h.countMean.toFixed(1)}/${h.countMax}, usage entropy ${h.normalizedEntropy.toFixed(2)}, never updated ${h.neverUpdated.toFixed(1)}`,
    );
  }
  return lines.join('\n');
}

/**
 * Trains into `out`. SIGINT/SIGTERM finish the step in flight, write a checkpoint and resolve to
 * 130; a second signal exits at once (the last checkpoint is intact: writes are atomic).
 */
export async function runTraining(
  config: TrainConfig,
  backend: string,
  out: string,
  flags: RunFlags,
  prepare: (config: TrainConfig) => Promise<void>,
  progress: Progress,
): Promise<number> {
  const checkpointEvery = integerFlag('checkpoint-every', flags['checkpoint-every'], 1);
  const maxNonFiniteSteps = integerFlag('max-nonfinite', flags['max-nonfinite'], 1);
  const active = await useBackend(backend);
  const controller = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      process.stderr.write(`ovq-train: second ${signal}: exiting without a new checkpoint\n`);
      process.exit(130);
    }
    process.stderr.write(
      `ovq-train: ${signal}: finishing the current step and writing a checkpoint (send it again to exit at once)\n`,
    );
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    progress.message(
      `training ${config.model.mixers} × ${config.model.layers} layers on ${config.task.name} (backend ${active}) → ${out}`,
    );
    const checkpointPath = join(out, RUN_FILES.checkpoint);
    const result = await train(config, {
      createMixer: createTfjsMixer,
      checkpointPath,
      metricsPath: join(out, RUN_FILES.metrics),
      resume: Boolean(flags.resume),
      signal: controller.signal,
      checkpointEvery,
      maxNonFiniteSteps,
      onStart: () => prepare(config),
      onEvent: (e) => {
        if (e.type === 'step') {
          progress.step(e);
          if (e.skipped)
            progress.message(
              `step ${e.step}: non-finite gradient norm or loss, update skipped (${e.skippedSteps} so far)`,
            );
        } else if (e.type === 'eval')
          progress.message(`eval @ step ${e.step}\n${e.results.map(describeEval).join('\n')}`);
      },
    });
    if (result.interrupted) {
      progress.message(
        `interrupted at step ${result.steps}/${config.steps}; checkpoint written to ${checkpointPath}. Continue with: ovq-train run --out ${out} --resume`,
      );
      result.model.dispose();
      return 130;
    }
    const sizes = result.model.stateSize(config.seqLen);
    progress.message(
      `state numbers per layer at T=${config.seqLen}: ${sizes.map((s, l) => `${result.model.kinds[l]}=${s}`).join(', ')}`,
    );
    result.model.dispose();
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** A missing --checkpoint is a usage error; a corrupt one fails later, when it is verified. */
function requireCheckpointFile(path: string): void {
  if (!existsSync(path))
    throw new UsageError(
      `--checkpoint: ${path} does not exist; pass the ckpt.bin written by "ovq-train run"`,
    );
}

const percent = (x: number) => (Number.isNaN(x) ? '–' : (100 * x).toFixed(1));
const distance = (x: number) => (Number.isNaN(x) ? '–' : x.toFixed(3));

/** `--cut-echo` and its control `--decoy`, shared by eval and needle-trace. */
function cutFlags(flags: { 'cut-echo'?: boolean; decoy?: boolean }) {
  const cutEcho = flags['cut-echo'] === true;
  const decoy = flags.decoy === true;
  if (decoy && !cutEcho)
    throw new UsageError('--decoy: a control for --cut-echo; pass both, or neither');
  return { cutEcho, decoy };
}

/** Test-time variant flags shared by eval and needle-trace (the regime's ablation cells). */
type VariantFlags = {
  'eval-capacity'?: string;
  'eval-beta-scale'?: string;
  'eval-spawn-distance'?: string;
  'eval-reserve'?: string;
};

/**
 * The trained model, or a copy with its OVQ layers changed at test time as the flags ask
 * (capacity × factor, β × factor, novelty spawn at a distance), and a label naming the change.
 * Every flag is parsed before the first copy is made. The caller disposes `model` when it is not
 * `trained`.
 */
function testTimeVariant(trained: Decoder, flags: VariantFlags) {
  const capacityScale = numberFlag('eval-capacity', flags['eval-capacity'], 0);
  const betaScale = numberFlag('eval-beta-scale', flags['eval-beta-scale'], 0);
  const spawnDistance = numberFlag('eval-spawn-distance', flags['eval-spawn-distance'], 0);
  const reserve = integerFlag('eval-reserve', flags['eval-reserve'], 1);
  const asked = [capacityScale, betaScale, spawnDistance, reserve].some((x) => x !== undefined);
  if (asked && !trained.kinds.includes('ovq'))
    throw new UsageError(
      `--eval-capacity, --eval-beta-scale, --eval-spawn-distance, --eval-reserve: change OVQ layers; this model's mixers are ${trained.config.mixers}`,
    );
  const novelty = spawnDistance ?? trained.config.mixerOptions?.ovqSpawnDistance;
  if (reserve !== undefined && novelty === undefined)
    throw new UsageError(
      '--eval-reserve: reserved rows are filled only by novelty spawn; this model was trained without it, so add --eval-spawn-distance',
    );
  let model = trained;
  const swap = (next: Decoder) => {
    if (model !== trained) model.dispose();
    model = next;
  };
  if (capacityScale !== undefined) swap(withOvqCapacity(model, capacityScale, createTfjsMixer));
  if (betaScale !== undefined) swap(withOvqBetaScale(model, betaScale, createTfjsMixer));
  if (spawnDistance !== undefined)
    swap(withOvqSpawnDistance(model, spawnDistance, createTfjsMixer));
  if (reserve !== undefined) {
    const capacity = model.config.mixerOptions?.ovqCapacity ?? 0;
    if (reserve >= capacity) {
      if (model !== trained) model.dispose();
      throw new UsageError(
        `--eval-reserve: got ${reserve}; expected fewer rows than the OVQ capacity ${capacity}`,
      );
    }
    swap(withOvqReserve(model, reserve, createTfjsMixer));
  }
  const label = [
    capacityScale === undefined ? '' : `, capacity ×${capacityScale}`,
    betaScale === undefined ? '' : `, β ×${betaScale}`,
    spawnDistance === undefined ? '' : `, novelty spawn at ${spawnDistance}`,
    reserve === undefined ? '' : `, ${reserve} rows reserved for it`,
  ].join('');
  return { model, label, capacityScale, betaScale, spawnDistance, reserve };
}

/**
 * The trained task with `--needles` distractors (NIAH-MK: several needles, one asked for); a
 * model trained on anything but niah is refused by name.
 */
function withNeedles(task: TaskSpec, needles: number | undefined): TaskSpec {
  if (needles === undefined) return task;
  if (task.name !== 'niah')
    throw new UsageError(
      `--needles: this checkpoint was trained on ${task.name}; needles apply to niah models only`,
    );
  return { ...task, needles };
}

export async function runEval(
  checkpoint: string,
  flags: {
    lengths?: string;
    batches?: string;
    depths?: string;
    needles?: string;
    backend?: string;
    'cut-echo'?: boolean;
    decoy?: boolean;
  } & VariantFlags,
  progress: Progress,
) {
  const { cutEcho, decoy } = cutFlags(flags);
  const needles = integerFlag('needles', flags.needles, 1);
  const lengths = integerListFlag('lengths', flags.lengths) ?? [1, 4, 8];
  const batches = integerFlag('batches', flags.batches, 1) ?? 4;
  const depths = fractionListFlag('depths', flags.depths);
  const backend = choiceFlag('backend', flags.backend, BACKENDS) ?? DEFAULT_BACKEND;
  requireCheckpointFile(checkpoint);
  await useBackend(backend);
  const trained = await loadTrainedModel(checkpoint, createTfjsMixer);
  const { config, step } = trained;
  let model = trained.model;
  try {
    const variant = testTimeVariant(trained.model, flags);
    model = variant.model;
    const task = withNeedles(config.task, needles);
    if (depths && task.name !== 'niah')
      throw new UsageError(
        `--depths: this checkpoint was trained on ${task.name}; depths apply to niah models only`,
      );
    if (cutEcho && task.name !== 'niah')
      throw new UsageError(
        `--cut-echo: this checkpoint was trained on ${task.name}; the echo cut applies to niah models only`,
      );
    progress.message(
      `${checkpoint}: step ${step}, ${config.model.mixers} on ${task.name}${needles === undefined ? '' : ` with ${needles} needles`}${variant.label}`,
    );
    // Without --depths: the task as trained (NIAH: a random depth per sequence).
    for (const depth of depths ?? [undefined]) {
      const { evaluation } = await createTasks(
        depth === undefined ? task : ({ ...task, depth } as typeof task),
      );
      if (depth !== undefined) progress.message(`needle depth ${depth}`);
      for (const m of lengths) {
        const seqLen = config.seqLen * m;
        if (cutEcho && task.name === 'niah') {
          // Accuracy only: the cut runs the model's forward with a residual patch.
          const vocab = niahSpecVocabulary(task);
          const needleLength = task.needleLength ?? 4;
          const correct: number[] = [];
          for (let i = 0; i < batches; i++) {
            const batch = evaluationBatch(
              evaluation,
              config.evalBatchSize,
              seqLen,
              i,
            ) as TokenBatch;
            correct.push(
              ...(await needleAccuracy(model, batch, vocab, needleLength, { cutEcho, decoy })),
            );
          }
          const accuracy = correct.reduce((a, x) => a + x, 0) / correct.length;
          const what = decoy ? "a decoy's echo cut" : 'echo cut';
          progress.message(
            `len ${String(seqLen).padStart(5)}  accuracy ${percent(accuracy)}% (${what}, ${correct.length} sequences)`,
          );
          continue;
        }
        const r = await evaluate(model, evaluation, seqLen, batches, config.evalBatchSize, step);
        progress.message(describeEval(r));
        if (task.name === 'niah' && (task.needles ?? 1) > 1) {
          // Whose value it answers: the asked needle's, or (without matching the key) another's.
          const vocab = niahSpecVocabulary(task);
          const answers: { asked: number; other: number }[] = [];
          for (let i = 0; i < batches; i++) {
            const batch = evaluationBatch(evaluation, config.evalBatchSize, seqLen, i);
            answers.push(
              ...(await needleAnswers(model, batch as TokenBatch, vocab, task.needleLength ?? 4)),
            );
          }
          const mean = (f: (a: { asked: number; other: number }) => number) =>
            answers.reduce((sum, a) => sum + f(a), 0) / answers.length;
          progress.message(
            `    answer tokens from the asked needle ${percent(mean((a) => a.asked))}%, from the other needle most like the answer ${percent(mean((a) => a.other))}%`,
          );
        }
      }
    }
  } finally {
    if (model !== trained.model) model.dispose();
    trained.model.dispose();
  }
}

/**
 * `ovq-train needle-trace`: for a NIAH model, where each needle lands in every OVQ head's
 * dictionary and how much of it the question reads, by length and depth (the evaluation's own
 * sequences, replayed with @ovq/core's reference). Prints a Markdown table; `out` gets every trace.
 */
export async function runNeedleTrace(
  checkpoint: string,
  flags: {
    lengths?: string;
    batches?: string;
    depths?: string;
    needles?: string;
    out?: string;
    backend?: string;
    'cut-echo'?: boolean;
    decoy?: boolean;
  } & VariantFlags,
  progress: Progress,
) {
  const { cutEcho, decoy } = cutFlags(flags);
  const needles = integerFlag('needles', flags.needles, 1);
  const lengths = integerListFlag('lengths', flags.lengths) ?? [1, 4, 16];
  const batches = integerFlag('batches', flags.batches, 1) ?? 2;
  const depths = fractionListFlag('depths', flags.depths) ?? [0, 0.5, 1];
  const backend = choiceFlag('backend', flags.backend, BACKENDS) ?? DEFAULT_BACKEND;
  requireCheckpointFile(checkpoint);
  await useBackend(backend);
  const trained = await loadTrainedModel(checkpoint, createTfjsMixer);
  const { config, step } = trained;
  let model = trained.model;
  try {
    // Checked before any variant is built: a variant of a model without OVQ fails less clearly.
    const task = withNeedles(config.task, needles);
    if (task.name !== 'niah')
      throw new UsageError(
        `--checkpoint: needle-trace needs a niah model; this one was trained on ${task.name}`,
      );
    if (!model.mixers.some((m) => m.headInputs))
      throw new UsageError(
        `--checkpoint: needle-trace needs an OVQ layer; this model's mixers are ${config.model.mixers}`,
      );
    // Test-time variants of the trained model, as the regime's evalCapacity / evalBetaScale cells.
    const variant = testTimeVariant(trained.model, flags);
    model = variant.model;
    const { capacityScale, betaScale, spawnDistance, reserve } = variant;
    const needleLength = task.needleLength ?? 4;
    const vocab = niahSpecVocabulary(task);
    const cut = cutEcho ? (decoy ? ", a decoy's echo cut" : ', echo cut') : '';
    progress.message(
      `${checkpoint}: step ${step}, ${config.model.mixers} on niah${needles === undefined ? '' : ` with ${needles} needles`}${variant.label}${cut}`,
    );
    const lines = [
      '| length | depth | layer.head | accuracy % | needle tokens seeding a row % | still pending % | rows | count of the needle rows | read weight on them % | needle mass % | haystack keys like the needle key | of them in the window after it | their mass % | copies: squared distance to the nearest row at absorb (median) | filler after them (median / max) | β | similarity margin | slots closer than the needle | ln-count margin | needle key cosine |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ];
    const all: (NeedleHeadTrace & { seqLen: number; depth: number })[] = [];
    for (const m of lengths) {
      const seqLen = config.seqLen * m;
      for (const depth of depths) {
        const { evaluation } = await createTasks({ ...task, depth });
        const traces: NeedleHeadTrace[] = [];
        for (let i = 0; i < batches; i++) {
          const batch = evaluationBatch(evaluation, config.evalBatchSize, seqLen, i) as TokenBatch;
          traces.push(
            ...(await traceNeedles(model, batch, vocab, needleLength, { cutEcho, decoy })),
          );
        }
        all.push(...traces.map((t) => ({ ...t, seqLen, depth })));
        for (const s of summarizeNeedleTraces(traces)) {
          lines.push(
            `| ${seqLen} | ${depth} | ${s.layer}.${s.head} | ${percent(s.correct)} | ${percent(s.seeded)} | ${percent(s.pending)} | ${s.rows.toFixed(1)} | ${Number.isNaN(s.rowCount) ? '–' : s.rowCount.toFixed(1)} | ${percent(s.readWeight)} | ${percent(s.needleMass)} | ${s.keyTwins.toFixed(1)} | ${s.keyTwinsInWindow.toFixed(1)} | ${percent(s.twinMass)} | ${distance(s.copyDistance)} | ${distance(s.fillerDistance)} / ${distance(s.fillerDistanceMax)} | ${s.beta.toFixed(2)} | ${s.similarityMargin.toFixed(3)} | ${s.similarityRank.toFixed(1)} | ${s.priorMargin.toFixed(2)} | ${s.needleKeyCosine.toFixed(3)} |`,
          );
        }
      }
    }
    progress.message(lines.join('\n'));
    if (flags.out)
      await writeFile(
        flags.out,
        `${JSON.stringify({ checkpoint, step, capacityScale, betaScale, spawnDistance, reserve, needles, cutEcho, decoy, traces: all })}\n`,
      );
  } finally {
    if (model !== trained.model) model.dispose();
    trained.model.dispose();
  }
}

export async function runSample(
  checkpoint: string,
  flags: {
    prompt?: string;
    tokens?: string;
    temperature?: string;
    seed?: string;
    backend?: string;
  },
  progress: Progress,
) {
  const tokens = integerFlag('tokens', flags.tokens, 1) ?? 200;
  const temperature = numberFlag('temperature', flags.temperature, 0, true) ?? 0.8;
  const seed = integerFlag('seed', flags.seed, 0) ?? 0;
  const prompt = flags.prompt ?? 'The ';
  if (prompt.length === 0)
    throw new UsageError('--prompt: empty; give at least one character to continue');
  const backend = choiceFlag('backend', flags.backend, BACKENDS) ?? DEFAULT_BACKEND;
  requireCheckpointFile(checkpoint);
  await useBackend(backend);
  const { model, config } = await loadTrainedModel(checkpoint, createTfjsMixer);
  if (config.task.name !== 'byte-lm') {
    model.dispose();
    throw new UsageError(
      `--checkpoint: sampling needs a byte-lm model; this one was trained on ${config.task.name}`,
    );
  }
  const { sampleBytes } = await import('@ovq/train');
  const text = await sampleBytes(model, {
    prompt: new TextEncoder().encode(prompt),
    tokens,
    temperature,
    seed,
  });
  progress.message(new TextDecoder().decode(text));
  model.dispose();
  tf.disposeVariables();
}
