// Losses over the scored positions only (IGNORE targets and unmasked positions contribute nothing).
import * as tf from '@tensorflow/tfjs-core';
import type { Decoder } from '../model/decoder.js';
import { type Batch, IGNORE, type TokenBatch } from '../tasks/types.js';

/** Mean cross-entropy (tokens) or mean squared error (vectors) over scored positions. */
export function batchLoss(output: tf.Tensor, batch: Batch): tf.Scalar {
  return tf.tidy(() => {
    if (batch.kind === 'tokens') {
      const weights = Float32Array.from(batch.targets, (t) => (t === IGNORE ? 0 : 1));
      const safeTargets = Int32Array.from(batch.targets, (t) => (t === IGNORE ? 0 : t));
      const logits = tf.reshape(output, [batch.batch * batch.seqLen, batch.vocabSize]);
      const logProbs = tf.logSoftmax(logits);
      const picked = tf.sum(
        tf.mul(
          logProbs,
          tf.cast(tf.oneHot(tf.tensor1d(safeTargets, 'int32'), batch.vocabSize), 'float32'),
        ),
        -1,
      );
      const w = tf.tensor1d(weights);
      return tf.div(
        tf.neg(tf.sum(tf.mul(picked, w))),
        Math.max(
          1,
          weights.reduce((a, b) => a + b, 0),
        ),
      ) as tf.Scalar;
    }
    const pred = tf.reshape(output, [batch.batch * batch.seqLen, batch.targetDim]);
    const target = tf.tensor2d(batch.targets, [batch.batch * batch.seqLen, batch.targetDim]);
    const mask = tf.tensor2d(Float32Array.from(batch.mask), [batch.batch * batch.seqLen, 1]);
    const scored = Math.max(1, batch.mask.reduce((a, b) => a + b, 0) * batch.targetDim);
    return tf.div(tf.sum(tf.mul(tf.square(tf.sub(pred, target)), mask)), scored) as tf.Scalar;
  });
}

/** Model inputs of a batch as a tensor: int32 [B, T] or float32 [B, T, inputDim]. */
export function batchInputs(batch: Batch): tf.Tensor {
  return batch.kind === 'tokens'
    ? tf.tensor2d(batch.inputs, [batch.batch, batch.seqLen], 'int32')
    : tf.tensor3d(batch.inputs, [batch.batch, batch.seqLen, batch.inputDim]);
}

/** Flat positions `b·T + t` whose target is scored. */
export function scoredPositions(batch: TokenBatch): Int32Array {
  const out: number[] = [];
  batch.targets.forEach((t, i) => {
    if (t !== IGNORE) out.push(i);
  });
  return Int32Array.from(out);
}

/**
 * Whether to run the output head only at scored positions: when they are at most half of the
 * batch (recall tasks score a few per sequence; language modelling scores all of them).
 */
export function headAtScoredOnly(batch: Batch): boolean {
  if (batch.kind !== 'tokens') return false;
  let scored = 0;
  for (const t of batch.targets) if (t !== IGNORE) scored++;
  return scored > 0 && 2 * scored <= batch.targets.length;
}

/** Cross-entropy of logits [S, V] against S target tokens (mean over S). */
function rowCrossEntropy(logits: tf.Tensor, targets: Int32Array, vocabSize: number): tf.Scalar {
  const logProbs = tf.logSoftmax(logits);
  const picked = tf.sum(
    tf.mul(logProbs, tf.cast(tf.oneHot(tf.tensor1d(targets, 'int32'), vocabSize), 'float32')),
  );
  return tf.div(tf.neg(picked), Math.max(1, targets.length)) as tf.Scalar;
}

/**
 * The model's loss on a batch: `batchLoss(model.forward(inputs), batch)`, with the output head
 * run only at the scored positions where that is cheaper (same value up to rounding).
 * Also returns the argmax predictions per position (-1 where the head did not run).
 */
export function modelLoss(
  model: Decoder,
  batch: Batch,
  withPredictions = false,
): { loss: tf.Scalar; predictions?: tf.Tensor } {
  return tf.tidy(() => {
    if (batch.kind === 'tokens' && headAtScoredOnly(batch)) {
      const positions = scoredPositions(batch);
      const logits = model.forwardAt(batchInputs(batch), positions);
      const targets = Int32Array.from(positions, (p) => batch.targets[p]);
      const loss = rowCrossEntropy(logits, targets, batch.vocabSize);
      if (!withPredictions) return { loss };
      // Scattered on the device (no synchronous read: webgpu has none): argmax + 1 at the scored
      // positions, 0 elsewhere, then − 1.
      const best = tf.add(tf.argMax(logits, -1), tf.scalar(1, 'int32'));
      const placed = tf.scatterND(tf.tensor2d(positions, [positions.length, 1], 'int32'), best, [
        batch.targets.length,
      ]);
      return { loss, predictions: tf.sub(placed, tf.scalar(1, 'int32')) };
    }
    const out = model.forward(batchInputs(batch));
    const loss = batchLoss(out, batch);
    if (!withPredictions) return { loss };
    return { loss, predictions: batch.kind === 'tokens' ? tf.argMax(out, -1) : out };
  });
}

/**
 * The loss a training step differentiates: modelLoss in a training forward (mixers called with
 * `training: true`) plus the mixers' auxiliary losses, e.g. Transformer-VQ's commitment term.
 * Call `model.endTrainingStep(applied)` after the optimizer step.
 */
export function trainingLoss(model: Decoder, batch: Batch): tf.Scalar {
  return model.trainingForward(() =>
    tf.tidy(() => {
      const { loss } = modelLoss(model, batch);
      const auxiliary = model.auxiliaryLoss();
      return auxiliary === null ? loss : (tf.add(loss, auxiliary) as tf.Scalar);
    }),
  );
}
