// Loss by position on long documents for byte-level LM-trained hybrids (needs @ovq/train): each
// mixer is trained at one length and evaluated on held-out documents several times longer — does
// it keep using context past the training length?
import { consoleReporter, type Reporter } from '../report/format.js';
import { type LossByPositionResult, loadTrainApi } from './train-api.js';

export type LmOptions = {
  mixers: string[];
  /** Training length; loss is measured at `evalMultiple`× that on held-out documents. */
  seqLen: number;
  evalMultiple: number;
  steps: number;
  learningRate: number;
  seed: number;
};

export const DEFAULT_LM: LmOptions = {
  mixers: ['ovq', 'softmax', 'linear', 'decay-linear', 'gated-deltanet'],
  seqLen: 128,
  evalMultiple: 8,
  steps: 400,
  learningRate: 3e-3,
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
    const reason = `@ovq/train not available (${missing ?? 'no lossByPosition'})`;
    reporter.line(`lm: skipped: ${reason}`);
    return { status: 'skipped', reason };
  }
  const curves: ({ mixer: string } & LossByPositionResult)[] = [];
  for (const mixer of options.mixers) {
    reporter.progress(`lm: ${mixer}…`);
    try {
      const { mixers: _, ...rest } = options;
      const r = await api.lossByPosition({ mixer, ...rest });
      curves.push({ mixer, ...r });
      // One line per mixer: mean loss (nats/byte) over positions up to each bucket edge.
      const buckets = r.positions.map((p, i) => `≤${p}: ${r.loss[i].toFixed(2)}`).join('  ');
      reporter.line(`lm: ${mixer.padEnd(15)} ${buckets}`);
    } catch (error) {
      reporter.line(`lm: ${mixer} failed: ${String(error).slice(0, 160)}`);
    }
  }
  return { status: 'ok', options, curves };
}
