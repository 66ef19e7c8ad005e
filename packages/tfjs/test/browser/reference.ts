// Node side of ../browser.test.ts: float32-exact random inputs and the float64 reference of a
// batched mixer, assembled per [batch, head] (as test/mixer-check.ts does for tensors).
import { createRng, randn } from '@ovq/core/testing';
import type { Dims } from './protocol.js';

export type HeadSeq = {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  seqLen: number;
  keyDim: number;
  valueDim: number;
};

export type HeadReference = {
  output: ArrayLike<number>;
  dq: ArrayLike<number>;
  dk: ArrayLike<number>;
  dv: ArrayLike<number>;
  /** ∂⟨dOut, output⟩/∂β of this head (OVQ only). */
  dbeta?: number;
};

export type Reference = {
  output: Float64Array;
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
  /** Per head, summed over the batch. */
  dbeta: Float64Array;
};

/** Standard-normal values rounded to float32, so the page and the reference see the same numbers. */
export function randomF32(rng: () => number, length: number): number[] {
  return Array.from(randn(rng, length), Math.fround);
}

export function randomMixerInputs(seed: number, [B, H, T, dk, dv]: Dims) {
  const rng = createRng(seed);
  return {
    q: randomF32(rng, B * H * T * dk),
    k: randomF32(rng, B * H * T * dk),
    v: randomF32(rng, B * H * T * dv),
    dOut: randomF32(rng, B * H * T * dv),
  };
}

export function perHeadReference(
  [B, H, T, dk, dv]: Dims,
  x: { q: number[]; k: number[]; v: number[]; dOut: number[] },
  run: (seq: HeadSeq, head: number, dOut: Float64Array) => HeadReference,
): Reference {
  const ref: Reference = {
    output: new Float64Array(B * H * T * dv),
    dq: new Float64Array(B * H * T * dk),
    dk: new Float64Array(B * H * T * dk),
    dv: new Float64Array(B * H * T * dv),
    dbeta: new Float64Array(H),
  };
  const slice = (a: number[], bh: number, d: number) =>
    Float64Array.from(a.slice(bh * T * d, (bh + 1) * T * d));
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const seq = {
        q: slice(x.q, bh, dk),
        k: slice(x.k, bh, dk),
        v: slice(x.v, bh, dv),
        seqLen: T,
        keyDim: dk,
        valueDim: dv,
      };
      const r = run(seq, h, slice(x.dOut, bh, dv));
      ref.output.set(r.output, bh * T * dv);
      ref.dq.set(r.dq, bh * T * dk);
      ref.dk.set(r.dk, bh * T * dk);
      ref.dv.set(r.dv, bh * T * dv);
      ref.dbeta[h] += r.dbeta ?? 0;
    }
  }
  return ref;
}
