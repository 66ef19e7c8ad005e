// Loss by position on long documents for the LM-trained models (needs @ovq/train): does each
// mixer keep using context as documents get longer?
import { consoleReporter, type Reporter } from '../report/format.js';
import { type LossByPositionResult, loadTrainApi } from './train-api.js';

export type LmOptions = { mixers: string[]; seqLen: number; documents: number; seed: number };

export const DEFAULT_LM: LmOptions = {
  mixers: ['ovq', 'softmax', 'linear', 'decay-linear', 'gated-deltanet'],
  seqLen: 8192,
  documents: 8,
  seed: 1,
};

export type LmResult =
  | { status: 'skipped'; reason: string }
  | { status: 'ok'; options: LmOptions; curves: ({ mixer: string } & LossByPositionResult)[] };

export async function runLm(
  options: LmOptions = DEFAULT_LM,
  reporter: Reporter = consoleReporter,
): Promise<LmResult> {
  const { api, missing } = await loadTrainApi();
  if (!api.lossByPosition) {
    const reason = `@ovq/train not available (${missing ?? '@ovq/train does not export lossByPosition'})`;
    reporter.line(`lm: skipped: ${reason}`);
    return { status: 'skipped', reason };
  }
  const curves: ({ mixer: string } & LossByPositionResult)[] = [];
  for (const mixer of options.mixers) {
    reporter.progress(`lm: ${mixer}…`);
    try {
      const r = await api.lossByPosition({
        mixer,
        seqLen: options.seqLen,
        documents: options.documents,
        seed: options.seed,
      });
      curves.push({ mixer, ...r });
      const last = r.loss[r.loss.length - 1];
      reporter.line(
        `lm: ${mixer}: loss at position ${r.positions[r.positions.length - 1]} = ${last?.toFixed(3)}`,
      );
    } catch (error) {
      reporter.line(`lm: ${mixer} failed: ${String(error).slice(0, 160)}`);
    }
  }
  return { status: 'ok', options, curves };
}
