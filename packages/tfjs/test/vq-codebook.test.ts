// VqAttention's codebook learning (EMA k-means + commitment loss, the paper's recipe) against
// @ovq/baselines' float64 references: the EMA step, the commitment loss and its gradient, the
// stop-gradient into attention, and k-means behaviour on clustered inputs.
import * as Base from '@ovq/baselines';
import { assertClose, createRng, randn } from '@ovq/core/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { VqAttention, type VqAttentionArgs } from '../src/index.js';
import { randomTensor, tf, useBackend } from './backends.js';

const [B, T, D] = [2, 13, 12];

function weight(layer: VqAttention, name: string): tf.Variable {
  const w = layer.weights.find((x) => x.originalName.endsWith(name));
  if (!w) throw new Error(`no weight ${name}`);
  return w.read() as tf.Variable;
}

/** LayerNorm (no gain or bias, ε 1e-6) of each row of width d, in float64, in place. */
function layerNormRows(a: Float64Array, d: number): Float64Array {
  for (let r = 0; r < a.length / d; r++) {
    const row = a.subarray(r * d, (r + 1) * d);
    const m = row.reduce((s, x) => s + x, 0) / d;
    const v = row.reduce((s, x) => s + (x - m) ** 2, 0) / d;
    for (let i = 0; i < d; i++) row[i] = (row[i] - m) / Math.sqrt(v + 1e-6);
  }
  return a;
}

/**
 * Float64 keys of each head, [B·T, keyDim] rows in (b, t) order: k = x·W_k split by head, then
 * LayerNorm-ed when the layer normalises.
 */
function keysByHead(layer: VqAttention, x: tf.Tensor): Float64Array[] {
  const xs = x.dataSync();
  const wk = weight(layer, 'wk').dataSync();
  const { heads: H, keyDim: dk } = layer;
  return Array.from({ length: H }, (_, h) => {
    const k = new Float64Array(B * T * dk);
    for (let r = 0; r < B * T; r++) {
      for (let i = 0; i < dk; i++) {
        let s = 0;
        for (let d = 0; d < D; d++) s += xs[r * D + d] * wk[d * H * dk + h * dk + i];
        k[r * dk + i] = s;
      }
    }
    return layer.normalize ? layerNormRows(k, dk) : k;
  });
}

function statsOf(layer: VqAttention, h: number): Base.VqCodebookStats {
  const S = layer.config.codebookSize;
  const dk = layer.keyDim;
  return {
    codebookSize: S,
    keyDim: dk,
    counts: Float64Array.from(
      weight(layer, 'code_counts')
        .dataSync()
        .subarray(h * S, (h + 1) * S),
    ),
    sums: Float64Array.from(
      weight(layer, 'code_sums')
        .dataSync()
        .subarray(h * S * dk, (h + 1) * S * dk),
    ),
  };
}

const args: VqAttentionArgs = {
  heads: 2,
  keyDim: 4,
  codebookSize: 5,
  blockLength: 4,
  seed: 7,
  codebookDecay: 0.9,
  commitment: 0.5,
};

beforeAll(() => useBackend('cpu'));

describe('VqAttention codebook learning', () => {
  it('a training call + endTrainingStep is @ovq/baselines’ float64 EMA k-means step per head; the commitment loss is β_c/(B·T)·Σ_h Σ‖k − c_z‖²', () => {
    const layer = new VqAttention(args);
    const x = randomTensor(createRng(1), [B, T, D]);
    (layer.apply(x) as tf.Tensor).dispose();
    expect(layer.auxiliaryLoss()).toBeNull(); // an inference call records nothing
    expect(layer.endTrainingStep()).toBe(false);
    const before = [0, 1].map((h) => statsOf(layer, h));
    const codebook = layer.codebook();
    const keys = keysByHead(layer, x);
    const count = tf.memory().numTensors;
    (layer.apply(x, { training: true }) as tf.Tensor).dispose();
    const loss = layer.auxiliaryLoss()!.dataSync()[0];
    expect(layer.endTrainingStep()).toBe(true);
    expect(layer.auxiliaryLoss()).toBeNull();
    expect(tf.memory().numTensors, 'tensors left by a training step').toBe(count);

    let want = 0;
    for (let h = 0; h < 2; h++) {
      const eps = layer.codebookEpsilon;
      const cb = Base.vqCodebookFromStats(before[h], eps);
      assertClose(
        `codebook head ${h}`,
        cb,
        codebook.dataSync().subarray(h * 20, (h + 1) * 20),
        1e-6,
      );
      want += Base.vqCommitmentLoss(keys[h], cb, 5, 4).loss;
      const next = Base.vqEmaUpdate(before[h], keys[h], { decay: 0.9, epsilon: eps });
      const got = statsOf(layer, h);
      assertClose(`counts head ${h}`, next.counts, got.counts, 1e-6);
      assertClose(`sums head ${h}`, next.sums, got.sums, 1e-5);
      expect(Array.from(got.counts)).not.toEqual(Array.from(before[h].counts));
    }
    want *= 0.5 / (B * T);
    expect(Math.abs(loss - want) / want).toBeLessThan(1e-5);
    // A skipped step drops the statistics: the codebook stays.
    (layer.apply(x, { training: true }) as tf.Tensor).dispose();
    const kept = weight(layer, 'code_sums').dataSync().slice();
    expect(layer.endTrainingStep(false)).toBe(false);
    expect(Array.from(weight(layer, 'code_sums').dataSync())).toEqual(Array.from(kept));
    tf.dispose([x, codebook]);
    layer.dispose();
  });

  it('with deadCodeThreshold, a step is the float64 EMA step then vqRestartDeadCodes: live codes as vqEmaUpdate, each dead one restarted at the batch’s worst-fitted keys', () => {
    // γ = 0.9 from n = 1: a code no key chose falls to 0.9 (< 0.95, restarted), a chosen one
    // to ≥ 1.0 (kept).
    const layer = new VqAttention({ ...args, deadCodeThreshold: 0.95 });
    expect(layer.deadCodeThreshold).toBe(0.95);
    const x = randomTensor(createRng(4), [B, T, D]);
    (layer.apply(x) as tf.Tensor).dispose();
    const before = [0, 1].map((h) => statsOf(layer, h));
    const keys = keysByHead(layer, x);
    const worst = [0, 1].map((h) => {
      const cb = Base.vqCodebookFromStats(before[h], layer.codebookEpsilon);
      const error = (r: number) => {
        const one = keys[h].subarray(r * 4, (r + 1) * 4);
        return Base.vqCommitmentLoss(one, cb, 5, 4).loss;
      };
      return Array.from({ length: B * T }, (_, r) => r).sort((a, b) => error(b) - error(a));
    });
    const count = tf.memory().numTensors;
    (layer.apply(x, { training: true }) as tf.Tensor).dispose();
    expect(layer.endTrainingStep()).toBe(true);
    expect(tf.memory().numTensors, 'tensors left by a training step').toBe(count);
    let [dead, live] = [0, 0];
    for (let h = 0; h < 2; h++) {
      const next = Base.vqEmaUpdate(before[h], keys[h], {
        decay: 0.9,
        epsilon: layer.codebookEpsilon,
      });
      const got = statsOf(layer, h);
      for (let j = 0; j < 5; j++) {
        const row = got.sums.subarray(j * 4, (j + 1) * 4);
        if (next.counts[j] < 0.95) {
          dead++;
          expect(got.counts[j]).toBeCloseTo(0.95, 6);
          // Dead code j restarts at the j-th worst-fitted key of the step (largest ‖k − c_z‖²).
          const r = worst[h][j];
          assertClose(
            `head ${h} code ${j} restarts at key ${r}`,
            keys[h].subarray(r * 4, (r + 1) * 4),
            row.map((m) => m / 0.95),
            1e-5,
          );
        } else {
          live++;
          assertClose(`head ${h} code ${j} count`, [next.counts[j]], [got.counts[j]], 1e-6);
          assertClose(
            `head ${h} code ${j} sums`,
            next.sums.subarray(j * 4, (j + 1) * 4),
            row,
            1e-5,
          );
        }
      }
    }
    expect(dead, 'codes restarted').toBeGreaterThan(0);
    expect(live, 'codes kept').toBeGreaterThan(0);
    expect(() => new VqAttention({ ...args, deadCodeThreshold: -1 })).toThrow(
      /deadCodeThreshold.*got -1; expected a finite number ≥ 0/,
    );
    x.dispose();
    layer.dispose();
  });

  it('the commitment gradient reaches W_k as 2β_c/(B·T)·Σ x(k − c_z) (float64); no gradient reaches the codebook statistics', () => {
    // Raw keys (normalize: false): the gradient to W_k is then a plain product.
    const layer = new VqAttention({ ...args, commitment: 3, normalize: false });
    const rng = createRng(2);
    const x = randomTensor(rng, [B, T, D]);
    const dy = randomTensor(rng, [B, T, D]);
    (layer.apply(x) as tf.Tensor).dispose();
    const all = layer.weights.map((w) => w.read() as tf.Variable);
    const gradsOf = (training: boolean) =>
      tf.variableGrads(() => {
        const y = layer.apply(x, { training }) as tf.Tensor;
        const task = tf.sum(tf.mul(y, dy));
        return (training ? tf.add(task, layer.auxiliaryLoss()!) : task) as tf.Scalar;
      }, all);
    const withAux = gradsOf(true);
    const taskOnly = gradsOf(false);
    layer.endTrainingStep(false);
    for (const name of ['code_sums', 'code_counts']) {
      const v = weight(layer, name);
      expect(withAux.grads[v.name] ?? null, name).toBeNull();
      expect(taskOnly.grads[v.name] ?? null, name).toBeNull();
    }
    for (const name of ['wq', 'wv', 'wo']) {
      const v = weight(layer, name);
      const a = withAux.grads[v.name].dataSync();
      const b = taskOnly.grads[v.name].dataSync();
      expect(Array.from(a), `${name}: the commitment loss does not depend on it`).toEqual(
        Array.from(b),
      );
    }
    // Float64: dL/dW_k[d, h·dk + i] = 2β_c/(B·T)·Σ_{b,t} x[b,t,d]·(k − c_z)[b,h,t,i].
    const keys = keysByHead(layer, x);
    const xs = x.dataSync();
    const H = 2;
    const want = new Float64Array(D * H * 4);
    for (let h = 0; h < H; h++) {
      const cb = Base.vqCodebookFromStats(statsOf(layer, h), layer.codebookEpsilon);
      const { dKeys } = Base.vqCommitmentLoss(keys[h], cb, 5, 4);
      for (let r = 0; r < B * T; r++)
        for (let d = 0; d < D; d++)
          for (let i = 0; i < 4; i++)
            want[d * H * 4 + h * 4 + i] += ((3 / (B * T)) * xs[r * D + d] * dKeys[r * 4 + i]) / 1;
    }
    const wk = weight(layer, 'wk');
    const got = tf.sub(withAux.grads[wk.name], taskOnly.grads[wk.name]).dataSync();
    assertClose('dW_k of the commitment loss', want, got, 1e-4);
    tf.dispose([x, dy, withAux.value, taskOnly.value]);
    tf.dispose(Object.values(withAux.grads));
    tf.dispose(Object.values(taskOnly.grads));
    layer.dispose();
  });

  it('training calls on clustered inputs move the codebook onto the key clusters (quantisation error ≥ 2× lower)', () => {
    // 4 centres in input space (keys = x·W_k are then clustered too), 8 codes, γ = 0.9. EMA
    // k-means has local minima: here it ends with 5 codes never chosen and one code shared by two
    // clusters (no restarts, as in the paper), so the error (of LayerNorm-ed keys) falls 2.8×, not to the noise floor.
    const rng = createRng(5);
    const centres = randn(rng, 4 * D).map((v) => 2 * v);
    const batch = () => {
      const x = new Float32Array(B * T * D);
      const noise = randn(rng, B * T * D);
      for (let r = 0; r < B * T; r++) {
        const c = Math.floor(rng() * 4);
        for (let d = 0; d < D; d++) x[r * D + d] = centres[c * D + d] + 0.02 * noise[r * D + d];
      }
      return tf.tensor3d(x, [B, T, D]);
    };
    const layer = new VqAttention({
      heads: 1,
      keyDim: 4,
      codebookSize: 8,
      blockLength: 4,
      seed: 3,
      codebookDecay: 0.9,
      commitment: 1,
    });
    const probe = batch();
    const error = () => {
      (layer.apply(probe, { training: true }) as tf.Tensor).dispose();
      const e = layer.auxiliaryLoss()!.dataSync()[0];
      layer.endTrainingStep(false);
      return e;
    };
    (layer.apply(probe) as tf.Tensor).dispose();
    const first = error();
    for (let step = 0; step < 100; step++) {
      const x = batch();
      (layer.apply(x, { training: true }) as tf.Tensor).dispose();
      layer.endTrainingStep();
      x.dispose();
    }
    const last = error();
    expect(first).toBeGreaterThan(0);
    expect(last).toBeLessThan(first / 2);
    // The used codes' sizes hold the EMA of their share of the B·T = 26 keys per call.
    const counts = Array.from(weight(layer, 'code_counts').dataSync());
    expect(counts.reduce((a, b) => a + b, 0)).toBeCloseTo(B * T, 0);
    probe.dispose();
    layer.dispose();
  });

  it('the README training loop runs: the codebook moves by EMA k-means, nothing leaks', () => {
    const vq = new VqAttention({ heads: 2, keyDim: 8, codebookSize: 16, blockLength: 8 });
    const x = tf.randomNormal([4, 32, 16]);
    (vq.apply(x) as tf.Tensor).dispose(); // builds the weights
    const before = vq.codebook();
    const optimizer = tf.train.adam(1e-3);
    let count = 0;
    for (let step = 0; step < 3; step++) {
      optimizer.minimize(() => {
        const y = vq.apply(x, { training: true }) as tf.Tensor;
        const task = tf.mean(tf.square(y)); // your model's loss
        return tf.add(task, vq.auxiliaryLoss()!) as tf.Scalar;
      });
      vq.endTrainingStep(); // one EMA k-means step of the codebook
      if (step === 1) count = tf.memory().numTensors;
    }
    expect(tf.memory().numTensors).toBe(count);
    const after = vq.codebook();
    expect(Array.from(after.dataSync())).not.toEqual(Array.from(before.dataSync()));
    tf.dispose([x, before, after]);
    optimizer.dispose();
    vq.dispose();
  });

  it('normalize (default) LayerNorms queries and keys, never values', () => {
    const layer = new VqAttention({ ...args, valueDim: 4 });
    const x = randomTensor(createRng(9), [B, T, D]);
    (layer.apply(x) as tf.Tensor).dispose();
    expect(layer.normalize).toBe(true);
    const heads = (w: string, width: number) =>
      (layer as unknown as { toHeads(x: tf.Tensor, w: tf.Tensor, n: number): tf.Tensor }).toHeads(
        x,
        weight(layer, w),
        width,
      );
    const raw = (w: string) => {
      const xs = x.dataSync();
      const m = weight(layer, w).dataSync();
      const out = new Float64Array(B * 2 * T * 4); // [B, H, T, 4]
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          for (let h = 0; h < 2; h++)
            for (let i = 0; i < 4; i++) {
              let s = 0;
              for (let d = 0; d < D; d++) s += xs[(b * T + t) * D + d] * m[d * 8 + h * 4 + i];
              out[((b * 2 + h) * T + t) * 4 + i] = s;
            }
      return out;
    };
    for (const w of ['wq', 'wk']) {
      const got = heads(w, 4);
      assertClose(w, layerNormRows(raw(w), 4), got.dataSync(), 1e-5);
      got.dispose();
    }
    const v = heads('wv', 4);
    assertClose('wv (not normalised)', raw('wv'), v.dataSync(), 1e-6);
    tf.dispose([x, v]);
    layer.dispose();
  });

  it('codebookHealth reports usage from the EMA sizes (hand-computed)', async () => {
    const layer = new VqAttention({ heads: 2, keyDim: 4, codebookSize: 4, seed: 1 });
    (layer.apply(tf.zeros([1, 3, D])) as tf.Tensor).dispose();
    weight(layer, 'code_counts').assign(tf.tensor2d([4, 4, 4, 4, 6, 2, 0.001, 0], [2, 4]));
    const [even, skewed] = await layer.codebookHealth();
    expect(even).toEqual({
      codes: 4,
      countMin: 4,
      countMean: 4,
      countMax: 4,
      normalizedEntropy: 1,
      dead: 0,
    });
    const p = [6, 2, 0.001].map((x) => x / 8.001);
    const entropy = -p.reduce((a, x) => a + x * Math.log(x), 0) / Math.log(4);
    expect(skewed.countMin).toBe(0);
    expect(skewed.countMax).toBe(6);
    expect(skewed.countMean).toBeCloseTo(8.001 / 4, 6);
    expect(skewed.normalizedEntropy).toBeCloseTo(entropy, 6);
    expect(skewed.dead).toBe(2); // 0.001 and 0 are under 1% of 8.001 / 4
    layer.dispose();
  });

  it('bad options name the option, the value and what was expected; they round-trip through getConfig', () => {
    expect(() => new VqAttention({ ...args, codebookDecay: 1 })).toThrow(
      /VqAttention: codebookDecay: got 1; expected a number in \[0, 1\)/,
    );
    expect(() => new VqAttention({ ...args, commitment: -1 })).toThrow(
      /VqAttention: commitment: got -1; expected a finite number ≥ 0/,
    );
    expect(() => new VqAttention({ ...args, codebookEpsilon: 0 })).toThrow(
      /VqAttention: codebookEpsilon: got 0; expected a finite number > 0/,
    );
    const config = new VqAttention(args).getConfig();
    expect(config).toMatchObject({ commitment: 0.5, codebookDecay: 0.9, codebookEpsilon: 1e-5 });
  });
});
