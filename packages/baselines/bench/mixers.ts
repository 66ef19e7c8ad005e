// The mixers the benchmark times: each fast path and OVQ's chunked path,
// with its inputs at d = 64 and a correctness check against its float64 reference.
import * as B from '@ovq/baselines';
import { ovqAttention, ovqAttentionBackward, ovqAttentionReference } from '@ovq/core';
import { createRng, rmsRatio } from '@ovq/core/testing';

export type Inputs = {
  seq: {
    q: Float32Array;
    k: Float32Array;
    v: Float32Array;
    seqLen: number;
    keyDim: number;
    valueDim: number;
  };
  decay: Float32Array;
  alpha: Float32Array;
  beta: Float32Array;
  codebook: Float32Array;
  dOutput: Float32Array;
};

export type Mixer = {
  name: string;
  /** How cost grows with T (drives how many repeats the bench can afford). */
  growth: 'quadratic' | 'linear';
  forward(x: Inputs): unknown;
  /** The backward call alone; the bench times forward + backward, as a training step runs them. */
  backward(x: Inputs): unknown;
  /** RMS ratio of the fast path against the float64 reference on a small case. */
  check(x: Inputs): number;
};

export const D = 64;
export const VQ_CODES = 512;
export const VQ_BLOCK = 64;
export const OVQ_CONFIG = { chunkSize: 64, capacity: 1024, beta: 8 };
export const KVM_CONFIG: B.KvmConfig = {
  window: 64,
  beta: 8,
  budget: { kind: 'saturating', rows: 1024 },
};

function uniform(rng: () => number, n: number, lo: number, hi: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rng();
  return out;
}

/** Standard normal Float32 samples written in place (no float64 temporaries to inflate peak RSS). */
function randn32(rng: () => number, n: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-300)));
    const theta = 2 * Math.PI * rng();
    out[i] = r * Math.cos(theta);
    if (i + 1 < n) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

export function makeInputs(T: number, seed = 1): Inputs {
  const rng = createRng(seed);
  const f32 = (n: number) => randn32(rng, n);
  return {
    seq: { q: f32(T * D), k: f32(T * D), v: f32(T * D), seqLen: T, keyDim: D, valueDim: D },
    decay: uniform(rng, T, 0.9, 1),
    alpha: uniform(rng, T, 0.9, 1),
    beta: uniform(rng, T, 0.05, 0.5),
    codebook: f32(VQ_CODES * D),
    dOutput: f32(T * D),
  };
}

const f64 = <S extends Record<string, unknown>>(s: S): S =>
  Object.fromEntries(
    Object.entries(s).map(([k, v]) => [k, v instanceof Float32Array ? Float64Array.from(v) : v]),
  ) as S;

const vqConfig = { codebookSize: VQ_CODES, blockLength: VQ_BLOCK };

export const baselineMixers: Mixer[] = [
  {
    name: 'softmax (tiled)',
    growth: 'quadratic',
    forward: (x) => B.softmaxAttentionTiled(x.seq),
    backward: (x) => B.softmaxAttentionTiledBackward(x.seq, undefined, x.dOutput),
    check: (x) =>
      rmsRatio(B.softmaxAttention(f64(x.seq)).output, B.softmaxAttentionTiled(x.seq).output),
  },
  {
    name: 'linear (chunked)',
    growth: 'linear',
    forward: (x) => B.linearAttentionChunked(x.seq),
    backward: (x) => B.linearAttentionChunkedBackward(x.seq, undefined, x.dOutput),
    check: (x) =>
      rmsRatio(B.linearAttention(f64(x.seq)).output, B.linearAttentionChunked(x.seq).output),
  },
  {
    name: 'decay-linear (chunked)',
    growth: 'linear',
    forward: (x) => B.decayLinearAttentionChunked({ ...x.seq, decay: x.decay }),
    backward: (x) =>
      B.decayLinearAttentionChunkedBackward({ ...x.seq, decay: x.decay }, undefined, x.dOutput),
    check: (x) =>
      rmsRatio(
        B.decayLinearAttention(f64({ ...x.seq, decay: x.decay })).output,
        B.decayLinearAttentionChunked({ ...x.seq, decay: x.decay }).output,
      ),
  },
  {
    name: 'gated-deltanet (chunked)',
    growth: 'linear',
    forward: (x) => B.gatedDeltaNetChunked({ ...x.seq, alpha: x.alpha, beta: x.beta }),
    backward: (x) =>
      B.gatedDeltaNetChunkedBackward(
        { ...x.seq, alpha: x.alpha, beta: x.beta },
        undefined,
        x.dOutput,
      ),
    check: (x) =>
      rmsRatio(
        B.gatedDeltaNet(f64({ ...x.seq, alpha: x.alpha, beta: x.beta })).output,
        B.gatedDeltaNetChunked({ ...x.seq, alpha: x.alpha, beta: x.beta }).output,
      ),
  },
  {
    name: `vq S=${VQ_CODES} L=${VQ_BLOCK} (blocked)`,
    growth: 'linear',
    forward: (x) => B.vqAttentionBlocked({ ...x.seq, codebook: x.codebook }, vqConfig),
    backward: (x) =>
      B.vqAttentionBlockedBackward({ ...x.seq, codebook: x.codebook }, vqConfig, x.dOutput),
    check: (x) =>
      rmsRatio(
        B.vqAttention(f64({ ...x.seq, codebook: x.codebook }), vqConfig).output,
        B.vqAttentionBlocked({ ...x.seq, codebook: x.codebook }, vqConfig).output,
      ),
  },
  {
    name: 'kvm W=64 rows≤1024 (blocked)',
    growth: 'linear',
    forward: (x) => B.kvmAttentionBlocked(x.seq, KVM_CONFIG),
    backward: (x) => B.kvmAttentionBlockedBackward(x.seq, KVM_CONFIG, x.dOutput),
    check: (x) =>
      rmsRatio(
        B.kvmAttention(f64(x.seq), KVM_CONFIG).output,
        B.kvmAttentionBlocked(x.seq, KVM_CONFIG).output,
      ),
  },
];

/** OVQ's chunked path from @ovq/core: the column every ratio is taken against. */
export const ovqMixer: Mixer = {
  name: `ovq N=${OVQ_CONFIG.capacity} C=${OVQ_CONFIG.chunkSize} (chunked)`,
  growth: 'linear',
  forward: (x) => ovqAttention(x.seq, OVQ_CONFIG),
  backward: (x) => ovqAttentionBackward(x.seq, OVQ_CONFIG, x.dOutput),
  check: (x) =>
    rmsRatio(
      ovqAttentionReference(f64(x.seq), OVQ_CONFIG).output,
      ovqAttention(x.seq, OVQ_CONFIG).output,
    ),
};
