// The work behind each ovq-train command.
import { join } from 'node:path';
import {
  createTasks,
  createTfjsMixer,
  type EvalResult,
  evaluate,
  loadTrainedModel,
  type TrainConfig,
  train,
} from '@ovq/train';
import * as tf from '@tensorflow/tfjs';
import { useBackend } from './backend.js';
import type { Progress } from './progress.js';

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

export async function runTraining(
  config: TrainConfig,
  backend: string,
  out: string,
  resume: boolean,
  progress: Progress,
) {
  const active = await useBackend(backend);
  progress.message(
    `training ${config.model.mixers} × ${config.model.layers} layers on ${config.task.name} (backend ${active}) → ${out}`,
  );
  const result = await train(config, {
    createMixer: createTfjsMixer,
    checkpointPath: join(out, 'ckpt.bin'),
    metricsPath: join(out, 'metrics.jsonl'),
    resume,
    onEvent: (e) => {
      if (e.type === 'step') progress.step(e);
      else if (e.type === 'eval')
        progress.message(
          `eval @ step ${e.results[0].step}\n${e.results.map(describeEval).join('\n')}`,
        );
    },
  });
  const sizes = result.model.stateSize(config.seqLen);
  progress.message(
    `state numbers per layer at T=${config.seqLen}: ${sizes.map((s, l) => `${result.model.kinds[l]}=${s}`).join(', ')}`,
  );
  result.model.dispose();
}

export async function runEval(
  checkpoint: string,
  flags: { lengths?: string; batches?: string; backend?: string },
  progress: Progress,
) {
  await useBackend(flags.backend ?? 'cpu');
  const { model, config, step } = await loadTrainedModel(checkpoint, createTfjsMixer);
  const lengths = (flags.lengths ?? '1,4,8').split(',').map(Number);
  const batches = Number(flags.batches ?? 4);
  const { evaluation } = await createTasks(config.task);
  progress.message(`${checkpoint}: step ${step}, ${config.model.mixers} on ${config.task.name}`);
  for (const m of lengths) {
    progress.message(
      describeEval(
        await evaluate(model, evaluation, config.seqLen * m, batches, config.evalBatchSize, step),
      ),
    );
  }
  model.dispose();
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
  await useBackend(flags.backend ?? 'cpu');
  const { model, config } = await loadTrainedModel(checkpoint, createTfjsMixer);
  if (config.task.name !== 'byte-lm')
    throw new Error(
      `--checkpoint: sampling needs a byte-lm model; this one was trained on ${config.task.name}`,
    );
  const { sampleBytes } = await import('@ovq/train');
  const text = await sampleBytes(model, {
    prompt: new TextEncoder().encode(flags.prompt ?? 'The '),
    tokens: Number(flags.tokens ?? 200),
    temperature: Number(flags.temperature ?? 0.8),
    seed: Number(flags.seed ?? 0),
  });
  progress.message(new TextDecoder().decode(text));
  model.dispose();
  tf.disposeVariables();
}
