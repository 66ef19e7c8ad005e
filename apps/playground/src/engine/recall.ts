// Which facts of the recall sequence a state still holds, for OVQ and the two yardsticks run on
// the same tokens: softmax attention over the full KV cache (everything kept: the ceiling) and
// Key-Value Means with OVQ's row budget and window = chunk size (the same state shape, W = B =
// C, budget schedule matched to OVQ's growth). A fact is retrievable when reading the state with
// its key gives an output whose nearest fact value (cosine) is its own.
import {
  createKvmState,
  type KvmConfig,
  type KvmState,
  kvmAppend,
  kvmAttention,
  kvmStateSize,
} from '@ovq/baselines';
import { type OvqConfig, type OvqState, readState, resolveOvqConfig } from '@ovq/core';
import type { RecallFacts } from '../inputs/types.js';
import type { Piece } from './backend.js';

export type Retrieval = {
  /** Facts already streamed (position < tokens). */
  seen: number;
  ovq: boolean[];
  softmax: boolean[];
  kvm: boolean[];
};

/** KVM's config matched to an OVQ config (see the header). */
export function matchedKvmConfig(config: OvqConfig): KvmConfig {
  const c = resolveOvqConfig(config);
  const rows = Math.max(1, c.capacity);
  const budget =
    c.growth.kind === 'saturating'
      ? ({ kind: 'saturating', rows } as const)
      : ({ kind: 'fixed', rows } as const);
  return { window: c.chunkSize, blockSize: c.chunkSize, beta: c.beta, budget };
}

/**
 * Softmax attention's KV cache: every key (normalised as OVQ's config says) and value, read by
 * one softmax over all of them with OVQ's β — @ovq/baselines' `softmaxAttention` with
 * `{ beta, normalize }` read from this cache (test/recall.test.ts checks they agree). Kept here
 * as flat arrays because the library's one-token forward copies the whole cache per call.
 */
export class KvCache {
  length = 0;
  private keys: Float64Array;
  private values: Float64Array;
  constructor(
    readonly keyDim: number,
    readonly valueDim: number,
    readonly beta: number,
    readonly normalize: boolean,
  ) {
    this.keys = new Float64Array(1024 * keyDim);
    this.values = new Float64Array(1024 * valueDim);
  }
  append(piece: Piece): void {
    const { keyDim: dk, valueDim: dv } = this;
    const n = this.length + piece.seqLen;
    if (n * dk > this.keys.length) {
      const cap = Math.max(n, 2 * this.length);
      const k = new Float64Array(cap * dk);
      k.set(this.keys);
      const v = new Float64Array(cap * dv);
      v.set(this.values);
      this.keys = k;
      this.values = v;
    }
    this.keys.set(piece.k, this.length * dk);
    this.values.set(piece.v, this.length * dv);
    if (this.normalize) {
      for (let t = this.length; t < n; t++) normalizeInPlace(this.keys, t * dk, dk);
    }
    this.length = n;
  }
  /** softmax_s(β q̂·k̂_s) over every cached token, times v_s. */
  read(query: ArrayLike<number>): Float64Array {
    const { keyDim: dk, valueDim: dv } = this;
    const q = Float64Array.from(query);
    if (this.normalize) normalizeInPlace(q, 0, dk);
    const logits = new Float64Array(this.length);
    let max = Number.NEGATIVE_INFINITY;
    for (let s = 0; s < this.length; s++) {
      let dot = 0;
      for (let d = 0; d < dk; d++) dot += q[d] * this.keys[s * dk + d];
      logits[s] = this.beta * dot;
      if (logits[s] > max) max = logits[s];
    }
    const out = new Float64Array(dv);
    let sum = 0;
    for (let s = 0; s < this.length; s++) {
      const w = Math.exp(logits[s] - max);
      sum += w;
      for (let d = 0; d < dv; d++) out[d] += w * this.values[s * dv + d];
    }
    for (let d = 0; d < dv; d++) out[d] /= sum;
    return out;
  }
}

function normalizeInPlace(x: Float64Array, offset: number, dim: number): void {
  let s = 0;
  for (let d = 0; d < dim; d++) s += x[offset + d] * x[offset + d];
  const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
  for (let d = 0; d < dim; d++) x[offset + d] *= inv;
}

/** The softmax cache and a KVM stream (float64 reference of @ovq/baselines) fed alongside OVQ. */
export class Yardsticks {
  readonly softmax: KvCache;
  readonly kvm: KvmState;
  readonly kvmConfig: KvmConfig;
  constructor(dims: { keyDim: number; valueDim: number }, config: OvqConfig) {
    const c = resolveOvqConfig(config);
    this.softmax = new KvCache(dims.keyDim, dims.valueDim, c.beta, c.normalize);
    this.kvmConfig = matchedKvmConfig(config);
    this.kvm = createKvmState(dims, this.kvmConfig);
  }
  append(piece: Piece, dims: { keyDim: number; valueDim: number }): void {
    this.softmax.append(piece);
    kvmAppend(this.kvm, { ...piece, ...dims });
  }
  kvmStateSize(dims: { keyDim: number; valueDim: number }, tokens: number): number {
    return kvmStateSize(dims, this.kvmConfig, tokens);
  }
}

function nearestFact(y: ArrayLike<number>, facts: RecallFacts, dv: number): number {
  let best = -1;
  let bestCos = Number.NEGATIVE_INFINITY;
  let yy = 0;
  for (let d = 0; d < dv; d++) yy += y[d] * y[d];
  if (!(yy > 0)) return -1;
  for (let j = 0; j < facts.count; j++) {
    let dot = 0;
    let vv = 0;
    for (let d = 0; d < dv; d++) {
      const x = facts.values[j * dv + d];
      dot += y[d] * x;
      vv += x * x;
    }
    const cos = dot / Math.sqrt(vv * yy);
    if (cos > bestCos) {
      bestCos = cos;
      best = j;
    }
  }
  return best;
}

/** OVQ's read of one query (normalised as the state's config says) and its weights. */
export function readOvq(
  state: OvqState,
  query: ArrayLike<number>,
): { output: Float64Array; weights: Float64Array } {
  const q = Float64Array.from(query);
  if (state.config.normalize) {
    let s = 0;
    for (const x of q) s += x * x;
    const inv = 1 / Math.max(Math.sqrt(s), 1e-12);
    for (let d = 0; d < q.length; d++) q[d] *= inv;
  }
  const output = new Float64Array(state.valueDim);
  const weights = new Float64Array(state.size + state.pendingCount);
  readState(state, q, 0, output, 0, weights);
  return { output, weights };
}

/**
 * Probes every fact streamed so far. KVM is read by a one-token forward from its state (which
 * leaves the state unchanged) whose own value is zero, so the probe token adds nothing to the
 * output's direction.
 */
export function probeFacts(
  facts: RecallFacts,
  tokens: number,
  ovq: OvqState,
  yard: Yardsticks,
): Retrieval {
  const dk = ovq.keyDim;
  const dv = ovq.valueDim;
  const out: Retrieval = { seen: 0, ovq: [], softmax: [], kvm: [] };
  const zero = new Float32Array(dv);
  for (let i = 0; i < facts.count; i++) {
    if (facts.positions[i] >= tokens) {
      out.ovq.push(false);
      out.softmax.push(false);
      out.kvm.push(false);
      continue;
    }
    out.seen++;
    const key = facts.keys.subarray(i * dk, (i + 1) * dk);
    const probe = { q: key, k: key, v: zero, seqLen: 1, keyDim: dk, valueDim: dv };
    out.ovq.push(nearestFact(readOvq(ovq, key).output, facts, dv) === i);
    out.softmax.push(nearestFact(yard.softmax.read(key), facts, dv) === i);
    out.kvm.push(nearestFact(kvmAttention(probe, undefined, yard.kvm).output, facts, dv) === i);
  }
  return out;
}
