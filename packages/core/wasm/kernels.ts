// AssemblyScript source of the WASM SIMD kernels (built by scripts/build-wasm.mjs into
// src/wasm/kernels.generated.ts). Pointers are byte offsets into this module's memory, strides
// and sizes count f32 elements. Same contracts as the JS kernels in src/chunked/kernels.ts and
// src/chunked/read.ts; sums run in f32 lanes in a fixed order, so results are deterministic.

function hsum(s: v128): f32 {
  return (
    f32x4.extract_lane(s, 0) +
    f32x4.extract_lane(s, 1) +
    (f32x4.extract_lane(s, 2) + f32x4.extract_lane(s, 3))
  );
}

function at(base: usize, index: i32): usize {
  return base + ((<usize>index) << 2);
}

/** One dot product of length dim (4 lanes, then the tail). */
function dot(a: usize, b: usize, dim: i32): f32 {
  let s = f32x4.splat(0);
  let d = 0;
  for (; d + 4 <= dim; d += 4) {
    s = f32x4.add(s, f32x4.mul(v128.load(at(a, d)), v128.load(at(b, d))));
  }
  let t = hsum(s);
  for (; d < dim; d++) t += load<f32>(at(a, d)) * load<f32>(at(b, d));
  return t;
}

/**
 * Out[r·oStride + i] (+)= Σ_d A[r·aStride + d] · B[i·bStride + d]: 4 rows × 3 columns of f32x4
 * accumulators (12 registers, 4 more for the loads), lanes summed at the end.
 */
export function matmulABt(
  a: usize,
  aStride: i32,
  rows: i32,
  b: usize,
  bStride: i32,
  cols: i32,
  dim: i32,
  out: usize,
  oStride: i32,
  accumulate: i32,
): void {
  const dim4 = dim & ~3;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const a0 = at(a, r * aStride);
    const a1 = at(a0, aStride);
    const a2 = at(a1, aStride);
    const a3 = at(a2, aStride);
    const o0 = at(out, r * oStride);
    const o1 = at(o0, oStride);
    const o2 = at(o1, oStride);
    const o3 = at(o2, oStride);
    let i = 0;
    for (; i + 3 <= cols; i += 3) {
      const b0 = at(b, i * bStride);
      const b1 = at(b0, bStride);
      const b2 = at(b1, bStride);
      let s00 = f32x4.splat(0);
      let s01 = f32x4.splat(0);
      let s02 = f32x4.splat(0);
      let s10 = f32x4.splat(0);
      let s11 = f32x4.splat(0);
      let s12 = f32x4.splat(0);
      let s20 = f32x4.splat(0);
      let s21 = f32x4.splat(0);
      let s22 = f32x4.splat(0);
      let s30 = f32x4.splat(0);
      let s31 = f32x4.splat(0);
      let s32 = f32x4.splat(0);
      for (let d = 0; d < dim4; d += 4) {
        const x0 = v128.load(at(b0, d));
        const x1 = v128.load(at(b1, d));
        const x2 = v128.load(at(b2, d));
        let y = v128.load(at(a0, d));
        s00 = f32x4.add(s00, f32x4.mul(y, x0));
        s01 = f32x4.add(s01, f32x4.mul(y, x1));
        s02 = f32x4.add(s02, f32x4.mul(y, x2));
        y = v128.load(at(a1, d));
        s10 = f32x4.add(s10, f32x4.mul(y, x0));
        s11 = f32x4.add(s11, f32x4.mul(y, x1));
        s12 = f32x4.add(s12, f32x4.mul(y, x2));
        y = v128.load(at(a2, d));
        s20 = f32x4.add(s20, f32x4.mul(y, x0));
        s21 = f32x4.add(s21, f32x4.mul(y, x1));
        s22 = f32x4.add(s22, f32x4.mul(y, x2));
        y = v128.load(at(a3, d));
        s30 = f32x4.add(s30, f32x4.mul(y, x0));
        s31 = f32x4.add(s31, f32x4.mul(y, x1));
        s32 = f32x4.add(s32, f32x4.mul(y, x2));
      }
      let t00 = hsum(s00);
      let t01 = hsum(s01);
      let t02 = hsum(s02);
      let t10 = hsum(s10);
      let t11 = hsum(s11);
      let t12 = hsum(s12);
      let t20 = hsum(s20);
      let t21 = hsum(s21);
      let t22 = hsum(s22);
      let t30 = hsum(s30);
      let t31 = hsum(s31);
      let t32 = hsum(s32);
      for (let d = dim4; d < dim; d++) {
        const x0 = load<f32>(at(b0, d));
        const x1 = load<f32>(at(b1, d));
        const x2 = load<f32>(at(b2, d));
        let y = load<f32>(at(a0, d));
        t00 += y * x0;
        t01 += y * x1;
        t02 += y * x2;
        y = load<f32>(at(a1, d));
        t10 += y * x0;
        t11 += y * x1;
        t12 += y * x2;
        y = load<f32>(at(a2, d));
        t20 += y * x0;
        t21 += y * x1;
        t22 += y * x2;
        y = load<f32>(at(a3, d));
        t30 += y * x0;
        t31 += y * x1;
        t32 += y * x2;
      }
      if (accumulate) {
        t00 += load<f32>(at(o0, i));
        t01 += load<f32>(at(o0, i + 1));
        t02 += load<f32>(at(o0, i + 2));
        t10 += load<f32>(at(o1, i));
        t11 += load<f32>(at(o1, i + 1));
        t12 += load<f32>(at(o1, i + 2));
        t20 += load<f32>(at(o2, i));
        t21 += load<f32>(at(o2, i + 1));
        t22 += load<f32>(at(o2, i + 2));
        t30 += load<f32>(at(o3, i));
        t31 += load<f32>(at(o3, i + 1));
        t32 += load<f32>(at(o3, i + 2));
      }
      store<f32>(at(o0, i), t00);
      store<f32>(at(o0, i + 1), t01);
      store<f32>(at(o0, i + 2), t02);
      store<f32>(at(o1, i), t10);
      store<f32>(at(o1, i + 1), t11);
      store<f32>(at(o1, i + 2), t12);
      store<f32>(at(o2, i), t20);
      store<f32>(at(o2, i + 1), t21);
      store<f32>(at(o2, i + 2), t22);
      store<f32>(at(o3, i), t30);
      store<f32>(at(o3, i + 1), t31);
      store<f32>(at(o3, i + 2), t32);
    }
    for (; i < cols; i++) {
      const b0 = at(b, i * bStride);
      let t0 = dot(a0, b0, dim);
      let t1 = dot(a1, b0, dim);
      let t2 = dot(a2, b0, dim);
      let t3 = dot(a3, b0, dim);
      if (accumulate) {
        t0 += load<f32>(at(o0, i));
        t1 += load<f32>(at(o1, i));
        t2 += load<f32>(at(o2, i));
        t3 += load<f32>(at(o3, i));
      }
      store<f32>(at(o0, i), t0);
      store<f32>(at(o1, i), t1);
      store<f32>(at(o2, i), t2);
      store<f32>(at(o3, i), t3);
    }
  }
  // Leftover rows (a decode step's single query): 4 columns at a time, their 4 lane sums reduced
  // together by one transpose-add instead of 4 horizontal sums.
  for (; r < rows; r++) {
    const a0 = at(a, r * aStride);
    const o0 = at(out, r * oStride);
    let i = 0;
    if (dim4 === dim) {
      for (; i + 4 <= cols; i += 4) {
        const b0 = at(b, i * bStride);
        const b1 = at(b0, bStride);
        const b2 = at(b1, bStride);
        const b3 = at(b2, bStride);
        let s0 = f32x4.splat(0);
        let s1 = f32x4.splat(0);
        let s2 = f32x4.splat(0);
        let s3 = f32x4.splat(0);
        for (let d = 0; d < dim; d += 4) {
          const y = v128.load(at(a0, d));
          s0 = f32x4.add(s0, f32x4.mul(y, v128.load(at(b0, d))));
          s1 = f32x4.add(s1, f32x4.mul(y, v128.load(at(b1, d))));
          s2 = f32x4.add(s2, f32x4.mul(y, v128.load(at(b2, d))));
          s3 = f32x4.add(s3, f32x4.mul(y, v128.load(at(b3, d))));
        }
        const u = f32x4.add(
          v128.shuffle<f32>(s0, s1, 0, 4, 1, 5),
          v128.shuffle<f32>(s0, s1, 2, 6, 3, 7),
        );
        const v = f32x4.add(
          v128.shuffle<f32>(s2, s3, 0, 4, 1, 5),
          v128.shuffle<f32>(s2, s3, 2, 6, 3, 7),
        );
        let t = f32x4.add(v128.shuffle<f32>(u, v, 0, 1, 4, 5), v128.shuffle<f32>(u, v, 2, 3, 6, 7));
        if (accumulate) t = f32x4.add(t, v128.load(at(o0, i)));
        v128.store(at(o0, i), t);
      }
    }
    for (; i < cols; i++) {
      let t = dot(a0, at(b, i * bStride), dim);
      if (accumulate) t += load<f32>(at(o0, i));
      store<f32>(at(o0, i), t);
    }
  }
}

/**
 * Out[r·oStride + i] (+)= Σ_d A[r·aStride + d] · B[d·bStride + i]: the product with B stored
 * k-major (Bᵀ of matmulABt's operand). Blocks of 4 rows × 8 columns: per d, two vector loads of B
 * and four splatted A values feed 8 f32x4 accumulators, with no horizontal sums, so it runs about
 * 1.7x the GFLOP/s of matmulABt at d = 64. Keep bStride·4 off multiples of 4096 bytes (4K
 * aliasing halves the speed). Each output sums over d in order, one lane per column.
 */
export function matmulAB(
  a: usize,
  aStride: i32,
  rows: i32,
  b: usize,
  bStride: i32,
  cols: i32,
  dim: i32,
  out: usize,
  oStride: i32,
  accumulate: i32,
): void {
  const bs = (<usize>bStride) << 2;
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const a0 = at(a, r * aStride);
    const a1 = at(a0, aStride);
    const a2 = at(a1, aStride);
    const a3 = at(a2, aStride);
    const o0 = at(out, r * oStride);
    const o1 = at(o0, oStride);
    const o2 = at(o1, oStride);
    const o3 = at(o2, oStride);
    let i = 0;
    for (; i + 8 <= cols; i += 8) {
      let s00 = f32x4.splat(0);
      let s01 = f32x4.splat(0);
      let s10 = f32x4.splat(0);
      let s11 = f32x4.splat(0);
      let s20 = f32x4.splat(0);
      let s21 = f32x4.splat(0);
      let s30 = f32x4.splat(0);
      let s31 = f32x4.splat(0);
      let bp = at(b, i);
      for (let d = 0; d < dim; d++) {
        const x0 = v128.load(bp);
        const x1 = v128.load(bp, 16);
        bp += bs;
        let y = v128.load32_splat(at(a0, d));
        s00 = f32x4.add(s00, f32x4.mul(y, x0));
        s01 = f32x4.add(s01, f32x4.mul(y, x1));
        y = v128.load32_splat(at(a1, d));
        s10 = f32x4.add(s10, f32x4.mul(y, x0));
        s11 = f32x4.add(s11, f32x4.mul(y, x1));
        y = v128.load32_splat(at(a2, d));
        s20 = f32x4.add(s20, f32x4.mul(y, x0));
        s21 = f32x4.add(s21, f32x4.mul(y, x1));
        y = v128.load32_splat(at(a3, d));
        s30 = f32x4.add(s30, f32x4.mul(y, x0));
        s31 = f32x4.add(s31, f32x4.mul(y, x1));
      }
      if (accumulate) {
        s00 = f32x4.add(s00, v128.load(at(o0, i)));
        s01 = f32x4.add(s01, v128.load(at(o0, i + 4)));
        s10 = f32x4.add(s10, v128.load(at(o1, i)));
        s11 = f32x4.add(s11, v128.load(at(o1, i + 4)));
        s20 = f32x4.add(s20, v128.load(at(o2, i)));
        s21 = f32x4.add(s21, v128.load(at(o2, i + 4)));
        s30 = f32x4.add(s30, v128.load(at(o3, i)));
        s31 = f32x4.add(s31, v128.load(at(o3, i + 4)));
      }
      v128.store(at(o0, i), s00);
      v128.store(at(o0, i + 4), s01);
      v128.store(at(o1, i), s10);
      v128.store(at(o1, i + 4), s11);
      v128.store(at(o2, i), s20);
      v128.store(at(o2, i + 4), s21);
      v128.store(at(o3, i), s30);
      v128.store(at(o3, i + 4), s31);
    }
    for (; i + 4 <= cols; i += 4) {
      let s0 = f32x4.splat(0);
      let s1 = f32x4.splat(0);
      let s2 = f32x4.splat(0);
      let s3 = f32x4.splat(0);
      let bp = at(b, i);
      for (let d = 0; d < dim; d++) {
        const x = v128.load(bp);
        bp += bs;
        s0 = f32x4.add(s0, f32x4.mul(v128.load32_splat(at(a0, d)), x));
        s1 = f32x4.add(s1, f32x4.mul(v128.load32_splat(at(a1, d)), x));
        s2 = f32x4.add(s2, f32x4.mul(v128.load32_splat(at(a2, d)), x));
        s3 = f32x4.add(s3, f32x4.mul(v128.load32_splat(at(a3, d)), x));
      }
      if (accumulate) {
        s0 = f32x4.add(s0, v128.load(at(o0, i)));
        s1 = f32x4.add(s1, v128.load(at(o1, i)));
        s2 = f32x4.add(s2, v128.load(at(o2, i)));
        s3 = f32x4.add(s3, v128.load(at(o3, i)));
      }
      v128.store(at(o0, i), s0);
      v128.store(at(o1, i), s1);
      v128.store(at(o2, i), s2);
      v128.store(at(o3, i), s3);
    }
    for (; i < cols; i++) {
      let t0: f32 = 0;
      let t1: f32 = 0;
      let t2: f32 = 0;
      let t3: f32 = 0;
      let bp = at(b, i);
      for (let d = 0; d < dim; d++) {
        const x = load<f32>(bp);
        bp += bs;
        t0 += load<f32>(at(a0, d)) * x;
        t1 += load<f32>(at(a1, d)) * x;
        t2 += load<f32>(at(a2, d)) * x;
        t3 += load<f32>(at(a3, d)) * x;
      }
      if (accumulate) {
        t0 += load<f32>(at(o0, i));
        t1 += load<f32>(at(o1, i));
        t2 += load<f32>(at(o2, i));
        t3 += load<f32>(at(o3, i));
      }
      store<f32>(at(o0, i), t0);
      store<f32>(at(o1, i), t1);
      store<f32>(at(o2, i), t2);
      store<f32>(at(o3, i), t3);
    }
  }
  for (; r < rows; r++) {
    const a0 = at(a, r * aStride);
    const o0 = at(out, r * oStride);
    let i = 0;
    for (; i + 4 <= cols; i += 4) {
      let s0 = f32x4.splat(0);
      let bp = at(b, i);
      for (let d = 0; d < dim; d++) {
        s0 = f32x4.add(s0, f32x4.mul(v128.load32_splat(at(a0, d)), v128.load(bp)));
        bp += bs;
      }
      if (accumulate) s0 = f32x4.add(s0, v128.load(at(o0, i)));
      v128.store(at(o0, i), s0);
    }
    for (; i < cols; i++) {
      let t: f32 = 0;
      let bp = at(b, i);
      for (let d = 0; d < dim; d++) {
        t += load<f32>(at(a0, d)) * load<f32>(bp);
        bp += bs;
      }
      if (accumulate) t += load<f32>(at(o0, i));
      store<f32>(at(o0, i), t);
    }
  }
}

// exp on 4 lanes: x = n·ln2 + f (|f| ≤ ln2/2), e^f by a degree-6 polynomial, 2^n by the exponent
// bits. Relative error ≈ 1.2e-7 over the range; below −87.3 the result is 0 (masked logits).
// n comes from the 1.5·2²³ rounding trick (its low mantissa bits are n, so shifting them into the
// exponent field gives 2^n) and the clamps use pmin/pmax: wasm's NaN-propagating f32x4.min/max,
// nearest and trunc_sat each lower to several x64 instructions, which made this 2x slower.
function exp4(x: v128): v128 {
  const lo = f32x4.splat(-87.3);
  const under = f32x4.lt(x, lo);
  const xc = f32x4.pmax(f32x4.pmin(x, f32x4.splat(88.3)), lo);
  const magic = f32x4.splat(12582912.0);
  const t = f32x4.add(f32x4.mul(xc, f32x4.splat(Mathf.LOG2E)), magic);
  const n = f32x4.sub(t, magic);
  let f = f32x4.sub(xc, f32x4.mul(n, f32x4.splat(0.693359375)));
  f = f32x4.sub(f, f32x4.mul(n, f32x4.splat(-2.1219444e-4)));
  let p = f32x4.splat(1.98756915e-4);
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(1.3981999507e-3));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(8.3334519073e-3));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(4.1665795894e-2));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(1.6666665459e-1));
  p = f32x4.add(f32x4.mul(p, f), f32x4.splat(5.0000001201e-1));
  p = f32x4.add(f32x4.mul(f32x4.mul(p, f), f), f32x4.add(f, f32x4.splat(1)));
  const scale = i32x4.add(i32x4.shl(t, 23), i32x4.splat(0x3f800000));
  return v128.andnot(f32x4.mul(p, scale), under);
}

function exp1(x: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(x)), 0);
}

/**
 * Softmax of `rows` logit rows in place: W[r, i] = exp(β·W[r, i] + bias[i] − max) for
 * i < live = liveBase + r + 1, 0 for live ≤ i < stride; invSum[r] = 1/Σ.
 */
export function softmaxRows(
  w: usize,
  stride: i32,
  rows: i32,
  liveBase: i32,
  bias: usize,
  beta: f32,
  invSum: usize,
): void {
  const vb = f32x4.splat(beta);
  for (let r = 0; r < rows; r++) {
    const row = at(w, r * stride);
    const live = liveBase + r + 1;
    const live4 = live & ~3;
    let vmax = f32x4.splat(f32.NEGATIVE_INFINITY);
    let i = 0;
    for (; i < live4; i += 4) {
      const l = f32x4.add(f32x4.mul(vb, v128.load(at(row, i))), v128.load(at(bias, i)));
      v128.store(at(row, i), l);
      vmax = f32x4.pmax(vmax, l);
    }
    let m = max<f32>(
      max<f32>(f32x4.extract_lane(vmax, 0), f32x4.extract_lane(vmax, 1)),
      max<f32>(f32x4.extract_lane(vmax, 2), f32x4.extract_lane(vmax, 3)),
    );
    for (; i < live; i++) {
      const l = beta * load<f32>(at(row, i)) + load<f32>(at(bias, i));
      store<f32>(at(row, i), l);
      m = max<f32>(m, l);
    }
    const vm = f32x4.splat(m);
    let vsum = f32x4.splat(0);
    i = 0;
    for (; i < live4; i += 4) {
      const e = exp4(f32x4.sub(v128.load(at(row, i)), vm));
      v128.store(at(row, i), e);
      vsum = f32x4.add(vsum, e);
    }
    let sum = hsum(vsum);
    for (; i < live; i++) {
      const e = exp1(load<f32>(at(row, i)) - m);
      store<f32>(at(row, i), e);
      sum += e;
    }
    for (i = live; i < stride; i++) store<f32>(at(row, i), 0);
    store<f32>(at(invSum, r), 1 / sum);
  }
}

/** out[r·dv + d] = acc[r·dv + d] · invSum[r]. */
export function scaleRows(acc: usize, rows: i32, dv: i32, invSum: usize, out: usize): void {
  for (let r = 0; r < rows; r++) {
    const s = load<f32>(at(invSum, r));
    for (let d = 0; d < dv; d++) {
      store<f32>(at(out, r * dv + d), load<f32>(at(acc, r * dv + d)) * s);
    }
  }
}

/**
 * The nearest-row screen of the absorb: for each of P tokens, the rows i < n whose screen value
 * e = halfNorms[i] − S[j·sStride + i] is within window[j] of the smallest one. Writes how many
 * (count[j]) and the first of them (arg[j]); the caller re-ranks in float64 when count > 1.
 */
export function nearestScreen(
  s: usize,
  sStride: i32,
  P: i32,
  n: i32,
  halfNorms: usize,
  window: usize,
  arg: usize,
  count: usize,
): void {
  const n4 = n & ~3;
  for (let j = 0; j < P; j++) {
    const row = at(s, j * sStride);
    let vmin = f32x4.splat(f32.POSITIVE_INFINITY);
    let i = 0;
    for (; i < n4; i += 4) {
      vmin = f32x4.pmin(vmin, f32x4.sub(v128.load(at(halfNorms, i)), v128.load(at(row, i))));
    }
    let best = min<f32>(
      min<f32>(f32x4.extract_lane(vmin, 0), f32x4.extract_lane(vmin, 1)),
      min<f32>(f32x4.extract_lane(vmin, 2), f32x4.extract_lane(vmin, 3)),
    );
    for (; i < n; i++) best = min<f32>(best, load<f32>(at(halfNorms, i)) - load<f32>(at(row, i)));
    const limit = best + load<f32>(at(window, j));
    // Count 4 rows per step: lane masks of (½‖μ‖² − S ≤ limit) as 4-bit masks.
    const vlimit = f32x4.splat(limit);
    let first = -1;
    let c = 0;
    for (i = 0; i < n4; i += 4) {
      const e = f32x4.sub(v128.load(at(halfNorms, i)), v128.load(at(row, i)));
      const bits = i32x4.bitmask(f32x4.le(e, vlimit));
      if (bits !== 0) {
        if (first < 0) first = i + ctz(bits);
        c += popcnt(bits);
      }
    }
    for (; i < n; i++) {
      if (load<f32>(at(halfNorms, i)) - load<f32>(at(row, i)) <= limit) {
        if (first < 0) first = i;
        c++;
      }
    }
    store<i32>(at(arg, j), first);
    store<i32>(at(count, j), c);
  }
}

/**
 * The spawns of an absorb (same arithmetic and order as the JS loop in src/chunked/head.ts, so
 * the same decisions bit for bit): m picks among P pending keys (pendT: [dk, tStride], token j
 * in column j), each the not-yet-picked token
 * with the largest bestDist (farthest = 1, first wins ties) or picks[s] (farthest = 0); after
 * each pick, every token whose float64 squared distance to it is strictly below its bestDist
 * takes that distance and row rowBase + s. picked[j] = 1 marks the picks.
 */
export function spawnRows(
  pendT: usize,
  tStride: i32,
  P: i32,
  dk: i32,
  m: i32,
  farthest: i32,
  picks: usize,
  rowBase: i32,
  bestDist: usize,
  bestRow: usize,
  picked: usize,
): void {
  for (let j = 0; j < P; j++) store<i32>(at(picked, j), 0);
  const P4 = P & ~3;
  for (let s = 0; s < m; s++) {
    let pick = -1;
    if (farthest) {
      for (let j = 0; j < P; j++) {
        if (
          !load<i32>(at(picked, j)) &&
          (pick < 0 ||
            load<f64>(bestDist + ((<usize>j) << 3)) > load<f64>(bestDist + ((<usize>pick) << 3)))
        ) {
          pick = j;
        }
      }
      store<i32>(at(picks, s), pick);
    } else {
      pick = load<i32>(at(picks, s));
    }
    store<i32>(at(picked, pick), 1);
    const row = rowBase + s;
    // Four tokens at a time, one per f64 lane (pendT is k-major, so a token's keys are a column):
    // each lane runs exactly the scalar loop's f64 operations in the scalar loop's order.
    let j = 0;
    for (; j < P4; j += 4) {
      let s01 = f64x2.splat(0);
      let s23 = f64x2.splat(0);
      for (let d = 0; d < dk; d++) {
        const col = at(pendT, d * tStride);
        const p = f64x2.splat(<f64>load<f32>(at(col, pick)));
        const x = v128.load(at(col, j));
        const d01 = f64x2.sub(f64x2.promote_low_f32x4(x), p);
        const d23 = f64x2.sub(f64x2.promote_low_f32x4(v128.shuffle<f32>(x, x, 2, 3, 0, 1)), p);
        s01 = f64x2.add(s01, f64x2.mul(d01, d01));
        s23 = f64x2.add(s23, f64x2.mul(d23, d23));
      }
      updateBest(bestDist, bestRow, j, f64x2.extract_lane(s01, 0), row);
      updateBest(bestDist, bestRow, j + 1, f64x2.extract_lane(s01, 1), row);
      updateBest(bestDist, bestRow, j + 2, f64x2.extract_lane(s23, 0), row);
      updateBest(bestDist, bestRow, j + 3, f64x2.extract_lane(s23, 1), row);
    }
    for (; j < P; j++) {
      let dist: f64 = 0;
      for (let d = 0; d < dk; d++) {
        const col = at(pendT, d * tStride);
        const diff = <f64>load<f32>(at(col, j)) - <f64>load<f32>(at(col, pick));
        dist += diff * diff;
      }
      updateBest(bestDist, bestRow, j, dist, row);
    }
  }
}

/** A later row wins only when strictly nearer (as the JS loop). */
function updateBest(bestDist: usize, bestRow: usize, j: i32, dist: f64, row: i32): void {
  const bd = bestDist + ((<usize>j) << 3);
  if (dist < load<f64>(bd)) {
    store<f64>(bd, dist);
    store<i32>(at(bestRow, j), row);
  }
}
