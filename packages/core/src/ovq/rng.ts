// mulberry32: a tiny seedable PRNG. Its whole state is one uint32, so it can live inside a
// serialized OvqState and a stream split across calls draws the same numbers as one call.

/** Advances a mulberry32 state; returns the next state and a uniform number in [0, 1). */
export function mulberry32Step(state: number): { state: number; value: number } {
  const next = (state + 0x6d2b79f5) >>> 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return { state: next, value: ((t ^ (t >>> 14)) >>> 0) / 4294967296 };
}
