// Small independent definitions the reference is checked against.

/** Causal softmax attention with scale β on L2-normalised q/k, as a direct T×T loop. */
export function causalSoftmax(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  T: number,
  dk: number,
  dv: number,
  beta: number,
): Float64Array {
  const norm = (x: ArrayLike<number>, t: number) => {
    let s = 0;
    for (let d = 0; d < dk; d++) s += x[t * dk + d] ** 2;
    return Math.max(Math.sqrt(s), 1e-12);
  };
  const out = new Float64Array(T * dv);
  for (let t = 0; t < T; t++) {
    const logits: number[] = [];
    for (let s = 0; s <= t; s++) {
      let dot = 0;
      for (let d = 0; d < dk; d++) dot += q[t * dk + d] * k[s * dk + d];
      logits.push((beta * dot) / (norm(q, t) * norm(k, s)));
    }
    const max = Math.max(...logits);
    const w = logits.map((l) => Math.exp(l - max));
    const z = w.reduce((a, b) => a + b, 0);
    for (let s = 0; s <= t; s++) {
      for (let d = 0; d < dv; d++) out[t * dv + d] += (w[s] / z) * v[s * dv + d];
    }
  }
  return out;
}

/** Random cut points splitting [0, T) into pieces (some empty, some longer than a chunk). */
export function randomSplits(rng: () => number, T: number, pieces: number): number[] {
  const cuts = Array.from({ length: pieces - 1 }, () => Math.floor(rng() * (T + 1)));
  return [0, ...cuts.sort((a, b) => a - b), T];
}
