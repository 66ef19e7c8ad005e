// applyRope reads cos/sin from a table shared across calls: the same bytes as computing each angle
// directly, for tables that grow between calls, odd starting positions, both signs, float32 and
// float64 rows, and positions past the table's cap (computed per call).
import { describe, expect, it } from 'vitest';
import { applyRope, ROPE_TABLES_KEPT, ropeTablesHeld } from '../src/common.js';

function direct(
  x: Float64Array | Float32Array,
  rows: number,
  dim: number,
  first: number,
  base: number,
  sign: 1 | -1,
) {
  const half = dim >> 1;
  for (let r = 0; r < rows; r++) {
    const p = first + r;
    for (let i = 0; i < half; i++) {
      const theta = p * base ** ((-2 * i) / dim);
      const c = Math.cos(theta);
      const s = sign * Math.sin(theta);
      const a = x[r * dim + 2 * i];
      const b = x[r * dim + 2 * i + 1];
      x[r * dim + 2 * i] = a * c - b * s;
      x[r * dim + 2 * i + 1] = a * s + b * c;
    }
  }
}

function rows(n: number, seed: number, F: Float64ArrayConstructor | Float32ArrayConstructor) {
  const out = new F(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = s / 1073741824 - 1;
  }
  return out;
}

describe('applyRope', () => {
  it.each([
    // dim, base, [first, rows] calls in order (the table grows between them)
    [
      16,
      10000,
      [
        [0, 8],
        [5, 300],
        [1000, 3],
        [0, 2000],
      ],
    ],
    [
      32,
      500,
      [
        [7, 1],
        [250, 600],
      ],
    ],
    [6, 10000, [[3, 17]]],
    // 4096 × 256 pairs exceed the table cap: the last call computes its angles per call
    [
      512,
      10000,
      [
        [0, 4],
        [4090, 10],
      ],
    ],
  ] as const)('dim %i base %i: same bytes as direct angles', (dim, base, calls) => {
    let seed = 1;
    for (const [first, n] of calls) {
      for (const sign of [1, -1] as const) {
        for (const F of [Float64Array, Float32Array]) {
          const x = rows(n * dim, seed++, F);
          const want = x.slice();
          applyRope(x, n, dim, first, base, sign);
          direct(want, n, dim, first, base, sign);
          expect(x.some(Number.isNaN)).toBe(false);
          expect(Buffer.from(x.buffer).equals(Buffer.from(want.buffer))).toBe(true);
        }
      }
    }
  });
});

describe('applyRope table cache', () => {
  it(`keeps at most ROPE_TABLES_KEPT tables, dropping the least recently used, and stays exact`, () => {
    const dims = Array.from({ length: ROPE_TABLES_KEPT + 3 }, (_, i) => 2 * (i + 1));
    const check = (dim: number, seed: number) => {
      const x = rows(5 * dim, seed, Float64Array);
      const want = x.slice();
      applyRope(x, 5, dim, 3, 777, 1);
      direct(want, 5, dim, 3, 777, 1);
      expect(Buffer.from(x.buffer).equals(Buffer.from(want.buffer))).toBe(true);
    };
    for (const [i, d] of dims.entries()) check(d, i + 1);
    const held = ropeTablesHeld().filter((k) => k.endsWith(':777'));
    expect(held).toEqual(dims.slice(-ROPE_TABLES_KEPT).map((d) => `${d}:777`));
    // Using the oldest held table makes it the most recent; an evicted one is rebuilt exactly.
    check(dims[3] as number, 50);
    expect(ropeTablesHeld().at(-1)).toBe(`${dims[3]}:777`);
    check(dims[0] as number, 51);
    expect(ropeTablesHeld().at(-1)).toBe(`${dims[0]}:777`);
    expect(ropeTablesHeld()).toHaveLength(ROPE_TABLES_KEPT);
  });
});
