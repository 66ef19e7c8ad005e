// In-context linear regression with F functions interleaved in one context (ALGORITHM.md §7):
// each item is two positions, [onehot(f) | x | 0] scored on y = W_f x, then [onehot(f) | 0 | y]
// revealing the answer. The model must keep F regressions apart and fit each from its examples.
import { itemSeed, Random } from './random.js';
import type { Task, VectorBatch } from './types.js';

export type RegressionOptions = {
  functions: number;
  inputDim?: number;
  outputDim?: number;
  noise?: number;
};

export function linearRegressionTask(options: RegressionOptions): Task<VectorBatch> {
  const F = options.functions;
  const dx = options.inputDim ?? 8;
  const dy = options.outputDim ?? 1;
  const noise = options.noise ?? 0;
  if (!Number.isInteger(F) || F < 1 || F > 128)
    throw new RangeError(`regression: functions is ${F}; expected an integer in [1, 128]`);
  const width = F + dx + dy;
  return {
    name: 'linear-regression',
    description: `in-context linear regression: ${F} functions R^${dx} → R^${dy} interleaved, scored by MSE`,
    metric: 'mse',
    sample(batch, seqLen, seed) {
      if (seqLen % 2 !== 0 || seqLen < 2)
        throw new RangeError(`regression: seqLen is ${seqLen}; expected an even number ≥ 2`);
      const inputs = new Float32Array(batch * seqLen * width);
      const targets = new Float32Array(batch * seqLen * dy);
      const mask = new Uint8Array(batch * seqLen);
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        // Fresh functions per sequence: they can only be learned in context.
        const W = Float64Array.from({ length: F * dy * dx }, () => rng.normal() / Math.sqrt(dx));
        for (let item = 0; item < seqLen / 2; item++) {
          const f = rng.int(0, F);
          const x = Float64Array.from({ length: dx }, () => rng.normal());
          const tx = b * seqLen + 2 * item;
          const ty = tx + 1;
          inputs[tx * width + f] = 1;
          inputs[ty * width + f] = 1;
          for (let d = 0; d < dx; d++) inputs[tx * width + F + d] = x[d];
          for (let o = 0; o < dy; o++) {
            let y = noise * rng.normal();
            for (let d = 0; d < dx; d++) y += W[(f * dy + o) * dx + d] * x[d];
            targets[tx * dy + o] = y;
            inputs[ty * width + F + dx + o] = y;
          }
          mask[tx] = 1;
        }
      }
      return {
        kind: 'vectors',
        batch,
        seqLen,
        inputDim: width,
        targetDim: dy,
        inputs,
        targets,
        mask,
      };
    },
  };
}
