// FLOP models for the benchmark, with the counting rules of @ovq/core's chunkedFlops (the CPU
// benchmark's model): 2 FLOPs per multiply-add, 5 per softmax entry, 4 per dℓ entry in backward.
import * as core from '@ovq/core';

/** OVQ forward and forward+backward FLOPs of one head: @ovq/core's model, shared with the CPU bench. */
export function ovqFlops(dims, config) {
  return core.chunkedFlops(dims, config);
}

/**
 * The OVQ read kernels alone, one head: `chunkedFlops` does not split read from absorb, so its
 * read part is counted here with the same rules (per chunk of L queries against n rows and the
 * causal in-chunk keys: 2 per multiply-add of both products over all n + L columns, the masked
 * half included, and 5 per live softmax entry). Dictionary sizes follow the growth schedule.
 */
export function ovqReadFlops(dims, config) {
  const cfg = core.resolveOvqConfig(config);
  const { seqLen: T, keyDim: dk, valueDim: dv } = dims;
  const C = cfg.chunkSize;
  let n = 0;
  let read = 0;
  for (let t0 = 0; t0 < T; t0 += C) {
    const L = Math.min(C, T - t0);
    const live = L * n + (L * (L + 1)) / 2;
    read += 2 * L * (n + L) * (dk + dv) + 5 * live;
    if (L === C) n += core.spawnCount(cfg.growth, cfg.capacity, t0 + C, n, C);
  }
  return read;
}

/** Causal softmax attention, one head: only the causal half is counted (the kernel skips the rest). */
export function softmaxFlops({ seqLen: T, keyDim: dk, valueDim: dv }) {
  const live = (T * (T + 1)) / 2;
  const forward = live * (2 * dk + 2 * dv + 5);
  // Recompute logits and p, then dp, dv, dq, dk products and dℓ.
  const backward = live * (2 * dk + 5 + 2 * dv + 2 * dv + 2 * dk + 2 * dk + 4);
  return { forward, backward };
}

/** Chunked linear attention, one head: state products plus the causal in-chunk block. */
export function linearFlops({ seqLen: T, keyDim: dk, valueDim: dv }, C) {
  let flops = 0;
  for (let t0 = 0; t0 < T; t0 += C) {
    const L = Math.min(C, T - t0);
    flops += 2 * L * dk * dv; // chunk state K_cᵀV_c
    flops += 2 * L * dk * dv; // q_t S
    flops += ((L * (L + 1)) / 2) * 2 * (dk + dv); // in-chunk q·k and weighted v
  }
  return { forward: flops };
}
