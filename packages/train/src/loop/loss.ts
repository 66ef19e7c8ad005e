// Losses over the scored positions only (IGNORE targets and unmasked positions contribute nothing).
import * as tf from '@tensorflow/tfjs-core';
import { type Batch, IGNORE } from '../tasks/types.js';

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
