// Text → q, k, v: a fixed random projection of bytes (no trained model). Every byte value b has
// three seeded Gaussian embeddings A[b], B[b] (key space) and V[b] (value space); token t with
// byte b_t and previous byte b_{t−1} gets
//   k_t = q_t = A[b_t] + ½·B[b_{t−1}]   (b_{−1} = 0x20, a space),   v_t = V[b_t].
// The previous byte gives keys some context (a byte is split by what precedes it), and q = k
// makes each token ask what the dictionary holds near its own key. The tables are drawn from
// PROJECTION_SEED with @ovq/core's mulberry32, so the page and the tests build the same vectors.
import { createRng, normals } from './random.js';
import type { PlaygroundInput } from './types.js';

export const KEY_DIM = 16;
export const VALUE_DIM = 16;
export const PROJECTION_SEED = 20260528;

type Tables = { a: Float64Array; b: Float64Array; v: Float64Array };
let tables: Tables | null = null;

function projectionTables(): Tables {
  if (!tables) {
    const rng = createRng(PROJECTION_SEED);
    const scale = 1 / Math.sqrt(KEY_DIM);
    const a = normals(rng, 256 * KEY_DIM).map((x) => x * scale);
    const b = normals(rng, 256 * KEY_DIM).map((x) => x * scale);
    const v = normals(rng, 256 * VALUE_DIM).map((x) => x / Math.sqrt(VALUE_DIM));
    tables = { a, b, v };
  }
  return tables;
}

/** Bytes of `text` (UTF-8), capped at `maxBytes`. */
export function textBytes(text: string, maxBytes: number): Uint8Array {
  const bytes = new TextEncoder().encode(text);
  return bytes.length > maxBytes ? bytes.subarray(0, maxBytes) : bytes;
}

/** The projection above over `bytes` (one token per byte). */
export function projectBytes(
  bytes: Uint8Array,
  kind: 'text' | 'sample',
  label: string,
): PlaygroundInput {
  if (bytes.length === 0) {
    throw new Error('text: got an empty text; expected at least one byte to stream');
  }
  const { a, b, v: tv } = projectionTables();
  const T = bytes.length;
  const k = new Float32Array(T * KEY_DIM);
  const v = new Float32Array(T * VALUE_DIM);
  for (let t = 0; t < T; t++) {
    const cur = bytes[t];
    const prev = t > 0 ? bytes[t - 1] : 0x20;
    for (let d = 0; d < KEY_DIM; d++) {
      k[t * KEY_DIM + d] = a[cur * KEY_DIM + d] + 0.5 * b[prev * KEY_DIM + d];
    }
    for (let d = 0; d < VALUE_DIM; d++) v[t * VALUE_DIM + d] = tv[cur * VALUE_DIM + d];
  }
  return {
    kind,
    label,
    q: k.slice(),
    k,
    v,
    seqLen: T,
    keyDim: KEY_DIM,
    valueDim: VALUE_DIM,
    bytes: bytes.slice(),
  };
}
