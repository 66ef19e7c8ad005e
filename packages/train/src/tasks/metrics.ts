// Task metrics, computed from model outputs on the host.
import { IGNORE, type TokenBatch, type VectorBatch } from './types.js';

/** Accuracy of argmax predictions over the scored positions, overall and per position. */
export function tokenAccuracy(
  batch: TokenBatch,
  predictions: ArrayLike<number>,
): { accuracy: number; scored: number; byPosition: Float64Array; scoredByPosition: Float64Array } {
  const hits = new Float64Array(batch.seqLen);
  const counts = new Float64Array(batch.seqLen);
  let correct = 0;
  let scored = 0;
  for (let i = 0; i < batch.targets.length; i++) {
    const target = batch.targets[i];
    if (target === IGNORE) continue;
    const t = i % batch.seqLen;
    counts[t]++;
    scored++;
    if (predictions[i] === target) {
      correct++;
      hits[t]++;
    }
  }
  const byPosition = hits.map((h, t) => (counts[t] > 0 ? h / counts[t] : Number.NaN));
  return {
    accuracy: scored > 0 ? correct / scored : Number.NaN,
    scored,
    byPosition,
    scoredByPosition: counts,
  };
}

/** Mean squared error over the masked positions. */
export function maskedMse(batch: VectorBatch, predictions: ArrayLike<number>): number {
  let sum = 0;
  let n = 0;
  for (let p = 0; p < batch.mask.length; p++) {
    if (!batch.mask[p]) continue;
    for (let o = 0; o < batch.targetDim; o++) {
      const i = p * batch.targetDim + o;
      sum += (predictions[i] - batch.targets[i]) ** 2;
      n++;
    }
  }
  return n > 0 ? sum / n : Number.NaN;
}
