// Seeded numbers for the inputs: @ovq/core's mulberry32 generator and Box–Muller normals, so the
// page and the Node tests build bit-identical sequences from the same seed.
import { mulberry32Step } from '@ovq/core';

export type Rng = () => number;

export function createRng(seed: number): Rng {
  let state = seed >>> 0;
  return () => {
    const step = mulberry32Step(state);
    state = step.state;
    return step.value;
  };
}

/** `length` standard normal samples. */
export function normals(rng: Rng, length: number): Float64Array {
  const out = new Float64Array(length);
  for (let i = 0; i < length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-300)));
    const theta = 2 * Math.PI * rng();
    out[i] = r * Math.cos(theta);
    if (i + 1 < length) out[i + 1] = r * Math.sin(theta);
  }
  return out;
}

/** Scales x[offset … offset+dim) to unit length in place (a zero row stays zero). */
export function normalizeRow(x: Float64Array | Float32Array, offset: number, dim: number): void {
  let s = 0;
  for (let d = 0; d < dim; d++) s += x[offset + d] * x[offset + d];
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let d = 0; d < dim; d++) x[offset + d] *= inv;
}
