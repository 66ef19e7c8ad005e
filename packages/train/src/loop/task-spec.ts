// JSON-serialisable task specs (for configs and checkpoints) and their construction.
import { type MqarSlice, mqarMixtureTask, mqarTask } from '../tasks/mqar.js';
import { type NiahVocabulary, niahTask, niahVocabulary } from '../tasks/niah.js';
import { basicRecallTask, positionalRecallTask } from '../tasks/recall.js';
import { linearRegressionTask } from '../tasks/regression.js';
import { byteLmTask, loadBrownCorpus, loadTextDocuments, splitDocuments } from '../tasks/text.js';
import type { Task } from '../tasks/types.js';

export type TaskSpec =
  | { name: 'mqar'; vocabSize: number; numPairs: number; powerA?: number }
  | { name: 'basic-recall'; vocabSize: number; numPairs: number; queries?: number }
  | { name: 'positional-recall'; vocabSize: number; runLength?: number }
  | {
      name: 'linear-regression';
      functions: number;
      inputDim?: number;
      outputDim?: number;
      noise?: number;
    }
  | { name: 'byte-lm'; corpus?: string; validationFraction?: number }
  | { name: 'mqar-mixture'; vocabSize: number; slices: MqarSlice[]; powerA?: number }
  | {
      name: 'niah';
      needleLength?: number;
      /** Synthetic filler tokens, or bytes of the default corpus (train/validation documents). */
      filler?: 'synthetic' | 'corpus';
      depth?: number;
      /** Needles per sequence, one asked for (NIAH-MK); default 1. */
      needles?: number;
    };

/** The token layout of a NIAH task spec (corpus filler: the 256 byte values). */
export function niahSpecVocabulary(spec: Extract<TaskSpec, { name: 'niah' }>): NiahVocabulary {
  return niahVocabulary({ filler: spec.filler === 'corpus' ? [] : 'synthetic' });
}

export const TASK_NAMES = [
  'mqar',
  'basic-recall',
  'positional-recall',
  'linear-regression',
  'byte-lm',
  'mqar-mixture',
  'niah',
] as const;

/** Specs whose task needs the corpus, which loads asynchronously. */
export function needsCorpus(spec: TaskSpec): boolean {
  return spec.name === 'byte-lm' || (spec.name === 'niah' && spec.filler === 'corpus');
}

/** The task of a synthetic spec (everything but those that need the corpus). */
export function createTasksSync(spec: Exclude<TaskSpec, { name: 'byte-lm' }>): Task {
  switch (spec.name) {
    case 'mqar-mixture':
      return mqarMixtureTask(spec);
    case 'niah':
      if (spec.filler === 'corpus')
        throw new Error('task.filler: corpus filler loads asynchronously; use createTasks');
      return niahTask({
        needleLength: spec.needleLength,
        depth: spec.depth,
        needles: spec.needles,
      });
    case 'mqar':
      return mqarTask(spec);
    case 'basic-recall':
      return basicRecallTask(spec);
    case 'positional-recall':
      return positionalRecallTask(spec);
    case 'linear-regression':
      return linearRegressionTask(spec);
    default:
      throw new Error(
        `task.name: unknown task ${JSON.stringify((spec as { name: unknown }).name)}; choose from ${TASK_NAMES.join(', ')}`,
      );
  }
}

/** The training and evaluation tasks of a spec (they differ only for byte-lm's document split). */
export async function createTasks(spec: TaskSpec): Promise<{ train: Task; evaluation: Task }> {
  if (spec.name === 'niah' && spec.filler === 'corpus') {
    const { train, validation } = splitDocuments(await loadBrownCorpus(), 0.1);
    const options = { needleLength: spec.needleLength, depth: spec.depth, needles: spec.needles };
    return {
      train: niahTask({ ...options, filler: train }),
      evaluation: niahTask({ ...options, filler: validation }),
    };
  }
  if (spec.name !== 'byte-lm') {
    const task = createTasksSync(spec);
    return { train: task, evaluation: task };
  }
  const docs = spec.corpus ? await loadTextDocuments(spec.corpus) : await loadBrownCorpus();
  const { train, validation } = splitDocuments(docs, spec.validationFraction ?? 0.1);
  if (validation.length === 0)
    throw new Error(`task.corpus: ${spec.corpus} has too few documents to hold out validation`);
  return {
    train: byteLmTask(train, 'byte-lm-train'),
    evaluation: byteLmTask(validation, 'byte-lm-validation'),
  };
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
    case 'niah':
      return {
        vocabSize: niahSpecVocabulary(spec).vocabSize,
      };
    default:
      return { vocabSize: spec.vocabSize };
  }
}
