// JSON-serialisable task specs (for configs and checkpoints) and their construction.
import { mqarTask } from '../tasks/mqar.js';
import { basicRecallTask, positionalRecallTask } from '../tasks/recall.js';
import { linearRegressionTask } from '../tasks/regression.js';
import { byteLmTask, loadBrownCorpus, loadTextDocuments, splitDocuments } from '../tasks/text.js';
import type { Task } from '../tasks/types.js';

export type TaskSpec =
  | { name: 'mqar'; vocabSize: number; numPairs: number; powerA?: number }
  | { name: 'basic-recall'; vocabSize: number; numPairs: number; queries?: number }
  | { name: 'positional-recall'; vocabSize: number }
  | {
      name: 'linear-regression';
      functions: number;
      inputDim?: number;
      outputDim?: number;
      noise?: number;
    }
  | { name: 'byte-lm'; corpus?: string; validationFraction?: number };

export const TASK_NAMES = [
  'mqar',
  'basic-recall',
  'positional-recall',
  'linear-regression',
  'byte-lm',
] as const;

/** The training and evaluation tasks of a spec (they differ only for byte-lm's document split). */
export async function createTasks(spec: TaskSpec): Promise<{ train: Task; evaluation: Task }> {
  switch (spec.name) {
    case 'mqar': {
      const t = mqarTask(spec);
      return { train: t, evaluation: t };
    }
    case 'basic-recall': {
      const t = basicRecallTask(spec);
      return { train: t, evaluation: t };
    }
    case 'positional-recall': {
      const t = positionalRecallTask(spec);
      return { train: t, evaluation: t };
    }
    case 'linear-regression': {
      const t = linearRegressionTask(spec);
      return { train: t, evaluation: t };
    }
    case 'byte-lm': {
      const docs = spec.corpus ? await loadTextDocuments(spec.corpus) : await loadBrownCorpus();
      const { train, validation } = splitDocuments(docs, spec.validationFraction ?? 0.1);
      if (validation.length === 0)
        throw new Error(`task.corpus: ${spec.corpus} has too few documents to hold out validation`);
      return {
        train: byteLmTask(train, 'byte-lm-train'),
        evaluation: byteLmTask(validation, 'byte-lm-validation'),
      };
    }
    default:
      throw new Error(
        `task.name: unknown task ${JSON.stringify((spec as { name: unknown }).name)}; choose from ${TASK_NAMES.join(', ')}`,
      );
  }
}

/** Model input/output sizes a task needs. */
export function taskShape(spec: TaskSpec): {
  vocabSize?: number;
  inputDim?: number;
  outputDim?: number;
} {
  switch (spec.name) {
    case 'linear-regression':
      return {
        inputDim: spec.functions + (spec.inputDim ?? 8) + (spec.outputDim ?? 1),
        outputDim: spec.outputDim ?? 1,
      };
    case 'byte-lm':
      return { vocabSize: 256 };
    default:
      return { vocabSize: spec.vocabSize };
  }
}
