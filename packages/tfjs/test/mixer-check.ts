// Checks a batched tfjs mixer op against a per-[batch, head] reference: outputs and every tf.grad
// gradient (RMS ratio), and that a tidy forward+backward leaks no tensor.
import { assertClose } from '@ovq/core/testing';
import { tf } from './backends.js';

export type HeadRef = {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  seqLen: number;
  keyDim: number;
  valueDim: number;
  head: number;
  /** Extra inputs of this head: its slice of a per-head input, or seqLen values (per token). */
  extras: Float64Array[];
};

/** The @ovq/baselines sequence (q, k, v and sizes) of one head. */
export function headSeq(h: HeadRef) {
  return {
    q: h.q,
    k: h.k,
    v: h.v,
    seqLen: h.seqLen,
    keyDim: h.keyDim,
    valueDim: h.valueDim,
  };
}

export type MixerCase = {
  name: string;
  batch: number;
  heads: number;
  seqLen: number;
  keyDim: number;
  valueDim: number;
  /** Extra input tensors (after q, k, v) and whether each is per head or per token. */
  extras: { tensor: tf.Tensor; kind: 'perHead' | 'perToken' }[];
  q: tf.Tensor;
  k: tf.Tensor;
  v: tf.Tensor;
  op: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, ...extras: tf.Tensor[]) => tf.Tensor;
  forward: (head: HeadRef) => ArrayLike<number>;
  /** Gradients of ⟨dOutput, output⟩; extras in order, 1 or seqLen values each. */
  backward: (
    head: HeadRef,
    dOutput: Float64Array,
  ) => {
    dq: ArrayLike<number>;
    dk: ArrayLike<number>;
    dv: ArrayLike<number>;
    extras: ArrayLike<number>[];
  };
};

const f64 = async (t: tf.Tensor) => Float64Array.from(await t.data());

export async function checkMixer(c: MixerCase, dOut: tf.Tensor, ratio = 1e-4): Promise<void> {
  const { batch, heads, seqLen: T, keyDim: dk, valueDim: dv } = c;
  const q = await f64(c.q);
  const k = await f64(c.k);
  const v = await f64(c.v);
  const ex = await Promise.all(c.extras.map((e) => f64(e.tensor)));
  const dy = await f64(dOut);
  const yRef = new Float64Array(batch * heads * T * dv);
  const gq = new Float64Array(q.length);
  const gk = new Float64Array(k.length);
  const gv = new Float64Array(v.length);
  const gEx = ex.map((x) => new Float64Array(x.length));
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const bh = b * heads + h;
      const head: HeadRef = {
        q: q.slice(bh * T * dk, (bh + 1) * T * dk),
        k: k.slice(bh * T * dk, (bh + 1) * T * dk),
        v: v.slice(bh * T * dv, (bh + 1) * T * dv),
        seqLen: T,
        keyDim: dk,
        valueDim: dv,
        head: h,
        extras: c.extras.map((e, i) =>
          e.kind === 'perHead'
            ? ex[i].slice((h * ex[i].length) / heads, ((h + 1) * ex[i].length) / heads)
            : ex[i].slice(bh * T, (bh + 1) * T),
        ),
      };
      yRef.set(c.forward(head), bh * T * dv);
      const g = c.backward(head, dy.slice(bh * T * dv, (bh + 1) * T * dv));
      gq.set(g.dq, bh * T * dk);
      gk.set(g.dk, bh * T * dk);
      gv.set(g.dv, bh * T * dv);
      c.extras.forEach((e, i) => {
        if (e.kind === 'perHead') {
          const w = ex[i].length / heads;
          for (let j = 0; j < w; j++) gEx[i][h * w + j] += g.extras[i][j];
        } else gEx[i].set(g.extras[i], bh * T);
      });
    }
  }
  const inputs = [c.q, c.k, c.v, ...c.extras.map((e) => e.tensor)];
  const before = tf.memory().numTensors;
  const [y, grads] = tf.tidy(() => {
    const out = c.op(c.q, c.k, c.v, ...c.extras.map((e) => e.tensor));
    const g = tf.grads((...xs: tf.Tensor[]) =>
      tf.sum(tf.mul(c.op(xs[0], xs[1], xs[2], ...xs.slice(3)), dOut)),
    )(inputs);
    return [out, g] as const;
  });
  assertClose(`${c.name} output`, yRef, await y.data(), ratio);
  assertClose(`${c.name} dq`, gq, await grads[0].data(), ratio);
  assertClose(`${c.name} dk`, gk, await grads[1].data(), ratio);
  assertClose(`${c.name} dv`, gv, await grads[2].data(), ratio);
  for (let i = 0; i < c.extras.length; i++) {
    assertClose(`${c.name} d(extra ${i})`, gEx[i], await grads[3 + i].data(), ratio);
  }
  tf.dispose([y, ...grads]);
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`${c.name}: ${after - before} tensors leaked`);
}
