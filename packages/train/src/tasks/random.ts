// Seeded sampling helpers for task generators (mulberry32 from @ovq/core: deterministic everywhere).
import { mulberry32Step } from '@ovq/core';

export class Random {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  /** Uniform in [0, 1). */
  next(): number {
    const s = mulberry32Step(this.state);
    this.state = s.state;
    return s.value;
  }
  /** Uniform integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }
  /** Standard normal (Box–Muller). */
  normal(): number {
    const u = Math.max(this.next(), 1e-300);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * this.next());
  }
  /** `count` distinct integers from [lo, hi), in random order. */
  distinct(lo: number, hi: number, count: number): number[] {
    if (count > hi - lo)
      throw new RangeError(`cannot draw ${count} distinct values from [${lo}, ${hi})`);
    const picked = new Set<number>();
    const out: number[] = [];
    while (out.length < count) {
      const x = this.int(lo, hi);
      if (!picked.has(x)) {
        picked.add(x);
        out.push(x);
      }
    }
    return out;
  }
  /** `count` distinct indices drawn without replacement with probabilities ∝ weights. */
  weightedDistinct(weights: Float64Array, count: number): number[] {
    const w = weights.slice();
    let total = w.reduce((a, b) => a + b, 0);
    const out: number[] = [];
    for (let c = 0; c < count; c++) {
      let u = this.next() * total;
      let i = 0;
      while (i < w.length - 1 && (u >= w[i] || w[i] === 0)) u -= w[i++];
      out.push(i);
      total -= w[i];
      w[i] = 0;
    }
    return out;
  }
  /** A per-item seed derived from this stream. */
  fork(): number {
    return Math.floor(this.next() * 4294967296);
  }
}

/** Seed for item `index` of a stream `seed`, so batches can be regenerated independently. */
export function itemSeed(seed: number, index: number): number {
  return (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(index + 1, 0xc2b2ae35)) >>> 0;
}
