// Shared types and small numeric helpers (row normalisation, RoPE, state serialisation).
import type { Seq } from '@ovq/core';
import { fail } from './validate.js';

export type FloatArray = Float32Array | Float64Array;
export type Dims = { keyDim: number; valueDim: number };

/** One head of one sequence: @ovq/core's `Seq` (row-major [seqLen, keyDim] q/k, [seqLen, valueDim] v). */
export type SeqInput = Seq;

/** Same floor as @ovq/core: x / max(‖x‖, 1e-12). */
export const NORM_EPS = 1e-12;

/** ‖x[o..o+dim)‖ as m·‖x/m‖ with m = max|x|: finite whenever the norm itself is. */
function scaledNorm(x: ArrayLike<number>, o: number, dim: number): number {
  let m = 0;
  for (let i = 0; i < dim; i++) m = Math.max(m, Math.abs(x[o + i]));
  let s = 0;
  for (let i = 0; i < dim; i++) s += (x[o + i] / m) ** 2;
  return m * Math.sqrt(s);
}

/** Copies `x` ([rows, dim]) into `out` with every row scaled to unit L2 norm; returns the norms used. */
export function normalizeRows<A extends FloatArray>(
  x: ArrayLike<number>,
  rows: number,
  dim: number,
  out: A,
): A {
  const norms = new (out.constructor as new (n: number) => A)(rows);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    let s = 0;
    for (let i = 0; i < dim; i++) s += x[o + i] * x[o + i];
    let n = Math.sqrt(s);
    if (n === Number.POSITIVE_INFINITY) n = scaledNorm(x, o, dim); // Σx² overflowed, ‖x‖ may not
    n = Math.max(n, NORM_EPS);
    norms[r] = n;
    for (let i = 0; i < dim; i++) out[o + i] = x[o + i] / n;
  }
  return norms;
}

/** Backward of x̂ = x / max(‖x‖, eps): dx = (dx̂ − x̂(x̂·dx̂)) / ‖x‖, or dx̂/eps below the floor. In place. */
export function normalizeRowsBackward(
  xHat: ArrayLike<number>,
  norms: ArrayLike<number>,
  rows: number,
  dim: number,
  grad: FloatArray,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const n = norms[r];
    if (n <= NORM_EPS) {
      for (let i = 0; i < dim; i++) grad[o + i] /= NORM_EPS;
      continue;
    }
    let d = 0;
    for (let i = 0; i < dim; i++) d += xHat[o + i] * grad[o + i];
    for (let i = 0; i < dim; i++) grad[o + i] = (grad[o + i] - xHat[o + i] * d) / n;
  }
}

/** cos/sin of pos·base^(−2i/dim) per (dim, base), grown on demand and shared by every call. */
type RopeTable = { half: number; positions: number; cos: Float64Array; sin: Float64Array };
const ROPE_TABLES = new Map<string, RopeTable>();
/** Tables stop growing at this many entries each (8 MiB); later positions are computed per call. */
const ROPE_TABLE_MAX = 1 << 20;
/** At most this many (dim, base) tables are kept; the least recently used goes first. */
export const ROPE_TABLES_KEPT = 8;

/** The (dim, base) keys of the tables held now, least recently used first (for tests). */
export function ropeTablesHeld(): string[] {
  return [...ROPE_TABLES.keys()];
}

/** The table covering positions [0, end), or null when that would exceed ROPE_TABLE_MAX. */
function ropeTable(dim: number, base: number, end: number): RopeTable | null {
  const half = dim >> 1;
  if (half === 0 || end * half > ROPE_TABLE_MAX) return null;
  const key = `${dim}:${base}`;
  const old = ROPE_TABLES.get(key);
  if (old) ROPE_TABLES.delete(key); // re-inserted below: Map order is recency order
  if (old && old.positions >= end) {
    ROPE_TABLES.set(key, old);
    return old;
  }
  const positions = Math.min(
    Math.max(end, 2 * (old?.positions ?? 0), 256),
    Math.floor(ROPE_TABLE_MAX / half),
  );
  const cos = new Float64Array(positions * half);
  const sin = new Float64Array(positions * half);
  const from = old?.positions ?? 0;
  if (old) {
    cos.set(old.cos);
    sin.set(old.sin);
  }
  const freq = ropeFrequencies(dim, base);
  for (let p = from; p < positions; p++) {
    for (let i = 0; i < half; i++) {
      const theta = p * freq[i];
      cos[p * half + i] = Math.cos(theta);
      sin[p * half + i] = Math.sin(theta);
    }
  }
  const table = { half, positions, cos, sin };
  ROPE_TABLES.set(key, table);
  while (ROPE_TABLES.size > ROPE_TABLES_KEPT) {
    const oldest = ROPE_TABLES.keys().next().value as string;
    ROPE_TABLES.delete(oldest);
  }
  return table;
}

function ropeFrequencies(dim: number, base: number): Float64Array {
  const half = dim >> 1;
  const freq = new Float64Array(half);
  for (let i = 0; i < half; i++) freq[i] = base ** ((-2 * i) / dim);
  return freq;
}

/**
 * Rotates interleaved pairs (x[2i], x[2i+1]) of each row by angle pos·base^(−2i/dim); sign −1
 * undoes it. The angles' cos/sin come from a table shared across calls (the same numbers as
 * computing them here: the SWA layer otherwise spent about a fifth of its time on them).
 */
export function applyRope(
  x: FloatArray,
  rows: number,
  dim: number,
  firstPosition: number,
  base: number,
  sign: 1 | -1,
): void {
  const half = dim >> 1;
  const table = ropeTable(dim, base, firstPosition + rows);
  const freq = table ? null : ropeFrequencies(dim, base);
  for (let r = 0; r < rows; r++) {
    const o = r * dim;
    const p = firstPosition + r;
    for (let i = 0; i < half; i++) {
      const theta = freq ? p * freq[i] : 0;
      const c = table ? table.cos[p * half + i] : Math.cos(theta);
      const s = sign * (table ? table.sin[p * half + i] : Math.sin(theta));
      const a = x[o + 2 * i];
      const b = x[o + 2 * i + 1];
      x[o + 2 * i] = a * c - b * s;
      x[o + 2 * i + 1] = a * s + b * c;
    }
  }
}

/** Serialised states carry this tag and version; anything else is rejected on load. */
export const STATE_FORMAT = 'ovq-baselines-state';
export const STATE_VERSION = 1;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export function serializeFields(mixer: string, fields: Record<string, unknown>): string {
  const body: Record<string, Json> = { format: STATE_FORMAT, version: STATE_VERSION, mixer };
  for (const [key, value] of Object.entries(fields)) {
    body[key] =
      value instanceof Float64Array || value instanceof Float32Array || value instanceof Int32Array
        ? Array.from(value)
        : (value as Json);
  }
  return JSON.stringify(body);
}

/** Parses and checks the envelope (format, version, mixer); fields are checked by the mixer. */
export function parseStateEnvelope(text: unknown, mixer: string): Record<string, unknown> {
  if (typeof text !== 'string') fail('text', text, 'a string from serialize…State');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    fail('text', text, 'valid JSON from serialize…State', 'is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    fail('text', body, 'a JSON object from serialize…State', `holds ${JSON.stringify(body)}`);
  }
  const b = body as Record<string, unknown>;
  if (b.format !== STATE_FORMAT) fail('text.format', b.format, JSON.stringify(STATE_FORMAT));
  if (b.version !== STATE_VERSION) {
    fail('text.version', b.version, String(STATE_VERSION), `has version ${String(b.version)}`);
  }
  if (b.mixer !== mixer) fail('text.mixer', b.mixer, JSON.stringify(mixer));
  return b;
}

/** Reads a numeric array field of a parsed state, checking its length. */
export function readNumbers(
  body: Record<string, unknown>,
  field: string,
  length: number,
): Float64Array {
  const x = body[field];
  if (!Array.isArray(x) || x.some((n) => typeof n !== 'number' || !Number.isFinite(n))) {
    fail(`text.${field}`, x, 'an array of finite numbers');
  }
  if (x.length !== length) fail(`text.${field}`, x, `${length} values`, `has ${x.length} values`);
  return Float64Array.from(x as number[]);
}

/** The input as Float32 (no copy when it already is). */
export function toFloat32(x: ArrayLike<number>): Float32Array {
  return x instanceof Float32Array ? x : Float32Array.from(x);
}

/** The input as Float64 (no copy when it already is). */
export function toFloat64(x: ArrayLike<number>): Float64Array {
  return x instanceof Float64Array ? x : Float64Array.from(x);
}

/**
 * Dst[c·ld + r] = Src[(r0 + r)·ls + c] for r < rows, c < cols: a block of rows, transposed
 * (ld defaults to rows). The right-hand operands of @ovq/core's C = A·Bᵀ kernel are made this way.
 */
export function transposeRows(
  Src: Float32Array,
  r0: number,
  ls: number,
  rows: number,
  cols: number,
  Dst: Float32Array,
  ld = rows,
): void {
  for (let r = 0; r < rows; r++) {
    const s = (r0 + r) * ls;
    for (let c = 0; c < cols; c++) Dst[c * ld + r] = Src[s + c];
  }
}
