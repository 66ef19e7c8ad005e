// Streaming inference state of a mixer layer: one host-memory state per [batch, head], from
// @ovq/core (OVQ) or @ovq/baselines. Generation reads each new token's projections from the
// backend once and advances these states, so memory per token is the mixer's state, not a cache
// of the whole sequence (except for full softmax attention, whose state is its KV cache).
import type { Tensor } from '@tensorflow/tfjs-core';
import { dispose, Variable } from '@tensorflow/tfjs-core';
import type { HeadData } from '../kernels/host-mixer.js';

export type MixerStreamState<S> = {
  /** className of the layer that created it (a state only fits its own layer). */
  layer: string;
  batch: number;
  heads: number;
  /** Tokens streamed so far. */
  position: number;
  /** One state per [batch, head], index b·heads + h. */
  perHead: S[];
};

export type ExtraKind = 'perHead' | 'perToken';

/**
 * Per-[batch, head] views of q, k [B, H, n, dk], v [B, H, n, dv] and extra inputs (per token
 * [B, H, n] or per head [H, …]), given their values already read to host memory (`values[i]` of
 * `tensors[i]`, by dataSync or by an awaited data()). Disposes the tensors, except variables.
 */
export function headViews(
  tensors: Tensor[],
  values: ArrayLike<number>[],
  kinds: readonly ExtraKind[],
) {
  const [q, , v, ...extras] = tensors;
  const [, H, n, dk] = q.shape;
  const dv = v.shape[3] as number;
  const [qs, ks, vs, ...xs] = values.map((x) =>
    x instanceof Float32Array ? x : Float32Array.from(x),
  );
  const widths = extras.map((e, i) =>
    kinds[i] === 'perHead' ? e.size / (e.shape[0] as number) : n,
  );
  // Weights handed out as-is (e.g. a codebook variable) must survive the step.
  dispose(tensors.filter((t) => !(t instanceof Variable)));
  return {
    head(b: number, h: number): HeadData {
      const bh = b * H + h;
      return {
        q: qs.subarray(bh * n * dk, (bh + 1) * n * dk),
        k: ks.subarray(bh * n * dk, (bh + 1) * n * dk),
        v: vs.subarray(bh * n * dv, (bh + 1) * n * dv),
        seqLen: n,
        keyDim: dk,
        valueDim: dv,
        head: h,
        extras: xs.map((x, i) => {
          const at = (kinds[i] === 'perHead' ? h : bh) * widths[i];
          return x.subarray(at, at + widths[i]);
        }),
      };
    },
  };
}
