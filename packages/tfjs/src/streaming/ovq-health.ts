// Dictionary health of OVQ streaming states: how full and how evenly used the dictionaries are.
import type { OvqState } from '@ovq/core';

export type DictionaryHealth = {
  /** Active rows n (≤ capacity). */
  size: number;
  capacity: number;
  /** Smallest, mean and largest count c_i over the active rows (0 when there are none). */
  countMin: number;
  countMean: number;
  countMax: number;
  /** Entropy of the usage distribution c_i / Σc in nats, and divided by ln n (1 = uniform). */
  usageEntropy: number;
  normalizedEntropy: number;
  /** Rows whose count is still 1: spawned from a token and never updated since. */
  neverUpdated: number;
  /** Tokens absorbed (Σ counts) and still pending. */
  tokensAbsorbed: number;
  pending: number;
};

/** Health of one head's dictionary. */
export function dictionaryHealth(state: OvqState): DictionaryHealth {
  const counts = state.counts;
  const n = counts.length;
  let min = n > 0 ? Number.POSITIVE_INFINITY : 0;
  let max = 0;
  let total = 0;
  let never = 0;
  for (let i = 0; i < n; i++) {
    const c = counts[i];
    if (c < min) min = c;
    if (c > max) max = c;
    total += c;
    if (c === 1) never++;
  }
  let entropy = 0;
  for (let i = 0; i < n; i++) {
    const p = counts[i] / total;
    if (p > 0) entropy -= p * Math.log(p);
  }
  return {
    size: n,
    capacity: state.config.capacity,
    countMin: min,
    countMean: n > 0 ? total / n : 0,
    countMax: max,
    usageEntropy: entropy,
    normalizedEntropy: n > 1 ? entropy / Math.log(n) : n === 1 ? 1 : 0,
    neverUpdated: never,
    tokensAbsorbed: state.tokensAbsorbed,
    pending: state.pendingCount,
  };
}
