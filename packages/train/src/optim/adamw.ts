// AdamW (Loshchilov & Hutter): Adam moments plus decoupled weight decay on matrices only (norm
// gains and biases are not decayed). Moments are plain tensors owned here, so checkpoints can
// save and restore them exactly.
import * as tf from '@tensorflow/tfjs-core';

export type AdamWOptions = {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
};

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  readonly weightDecay: number;
  step = 0;
  readonly m = new Map<string, tf.Tensor>();
  readonly v = new Map<string, tf.Tensor>();

  constructor(options: AdamWOptions = {}) {
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.95;
    this.epsilon = options.epsilon ?? 1e-8;
    this.weightDecay = options.weightDecay ?? 0.1;
  }

  /** Applies one update with learning rate `lr` to each named variable given its gradient. */
  apply(variables: Map<string, tf.Variable>, grads: Map<string, tf.Tensor>, lr: number): void {
    this.step += 1;
    const c1 = 1 - this.beta1 ** this.step;
    const c2 = 1 - this.beta2 ** this.step;
    for (const [name, variable] of variables) {
      const g = grads.get(name);
      if (!g) continue;
      const [m, v] = tf.tidy(() => {
        const mPrev = this.m.get(name) ?? tf.zerosLike(variable);
        const vPrev = this.v.get(name) ?? tf.zerosLike(variable);
        return [
          tf.add(tf.mul(mPrev, this.beta1), tf.mul(g, 1 - this.beta1)),
          tf.add(tf.mul(vPrev, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)),
        ];
      });
      this.m.get(name)?.dispose();
      this.v.get(name)?.dispose();
      this.m.set(name, tf.keep(m));
      this.v.set(name, tf.keep(v));
      const decay = variable.rank >= 2 ? this.weightDecay : 0;
      tf.tidy(() => {
        const adam = tf.div(tf.div(m, c1), tf.add(tf.sqrt(tf.div(v, c2)), this.epsilon));
        variable.assign(tf.sub(variable, tf.mul(tf.add(adam, tf.mul(variable, decay)), lr)));
      });
    }
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.m.clear();
    this.v.clear();
  }
}

/** Linear warm-up to `peak`, then cosine decay to `peak·minRatio` at `total` steps. */
export function learningRate(
  step: number,
  peak: number,
  warmup: number,
  total: number,
  minRatio = 0.1,
): number {
  if (step < warmup) return (peak * (step + 1)) / warmup;
  const progress = Math.min(1, (step - warmup) / Math.max(1, total - warmup));
  return peak * (minRatio + (1 - minRatio) * 0.5 * (1 + Math.cos(Math.PI * progress)));
}

// WebGPU binds every addN input as a storage buffer, 8 per shader stage at most: sum at most
// this many tensors per addN.
const ADD_N_INPUTS = 6;

/**
 * Sums same-shaped tensors left to right, a few per addN: the same order, hence the same float32
 * result on cpu/wasm, as one addN over all of them.
 */
function sumInChunks(tensors: tf.Tensor[]): tf.Tensor {
  return tf.tidy(() => {
    let total = tf.addN(tensors.slice(0, ADD_N_INPUTS));
    for (let i = ADD_N_INPUTS; i < tensors.length; i += ADD_N_INPUTS - 1)
      total = tf.addN([total, ...tensors.slice(i, i + ADD_N_INPUTS - 1)]);
    return total;
  });
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm`; resolves to the norm before
 * clipping (read asynchronously: webgpu has no synchronous reads in Node).
 */
export async function clipByGlobalNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): Promise<number> {
  const normTensor = tf.tidy(() =>
    tf.sqrt(sumInChunks([...grads.values()].map((g) => tf.sum(tf.square(g))))),
  );
  const norm = (await normTensor.data())[0];
  normTensor.dispose();
  if (norm > maxNorm && Number.isFinite(norm)) {
    const scale = maxNorm / norm;
    for (const [name, g] of grads) {
      grads.set(name, tf.mul(g, scale));
      g.dispose();
    }
  }
  return norm;
}
