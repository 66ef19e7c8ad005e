// Blocked matmul kernels of the tiled softmax attention (flash-attention style): a query block ×
// key block score tile S = β·Q·Kᵀ, an online softmax over it, then the P·V tile — each product in
// 4×4 register micro-tiles (every loaded q/k/p/v value feeds four multiply-adds instead of one,
// which is what makes a JS kernel run near the speed of a compiled matmul).

/** Query/key tile edge: a 64×64 score tile plus its rows stay in L1/L2. */
export const SOFTMAX_TILE = 64;

/**
 * S[r·ld + c] = scale · a_{ar+r} · b_{br+c} (rows of length n) for r < nr, c < nc: a row block of
 * A times the transpose of a row block of B.
 */
export function abtTile(
  a: Float32Array,
  ar: number,
  nr: number,
  b: Float32Array,
  br: number,
  nc: number,
  n: number,
  scale: number,
  S: Float32Array,
  ld: number,
): void {
  let r = 0;
  for (; r + 3 < nr; r += 4) {
    const a0 = (ar + r) * n;
    const a1 = a0 + n;
    const a2 = a1 + n;
    const a3 = a2 + n;
    let c = 0;
    for (; c + 3 < nc; c += 4) {
      const b0 = (br + c) * n;
      const b1 = b0 + n;
      const b2 = b1 + n;
      const b3 = b2 + n;
      let s00 = 0;
      let s01 = 0;
      let s02 = 0;
      let s03 = 0;
      let s10 = 0;
      let s11 = 0;
      let s12 = 0;
      let s13 = 0;
      let s20 = 0;
      let s21 = 0;
      let s22 = 0;
      let s23 = 0;
      let s30 = 0;
      let s31 = 0;
      let s32 = 0;
      let s33 = 0;
      for (let x = 0; x < n; x++) {
        const x0 = a[a0 + x];
        const x1 = a[a1 + x];
        const x2 = a[a2 + x];
        const x3 = a[a3 + x];
        const y0 = b[b0 + x];
        const y1 = b[b1 + x];
        const y2 = b[b2 + x];
        const y3 = b[b3 + x];
        s00 += x0 * y0;
        s01 += x0 * y1;
        s02 += x0 * y2;
        s03 += x0 * y3;
        s10 += x1 * y0;
        s11 += x1 * y1;
        s12 += x1 * y2;
        s13 += x1 * y3;
        s20 += x2 * y0;
        s21 += x2 * y1;
        s22 += x2 * y2;
        s23 += x2 * y3;
        s30 += x3 * y0;
        s31 += x3 * y1;
        s32 += x3 * y2;
        s33 += x3 * y3;
      }
      const o = r * ld + c;
      S[o] = scale * s00;
      S[o + 1] = scale * s01;
      S[o + 2] = scale * s02;
      S[o + 3] = scale * s03;
      S[o + ld] = scale * s10;
      S[o + ld + 1] = scale * s11;
      S[o + ld + 2] = scale * s12;
      S[o + ld + 3] = scale * s13;
      S[o + 2 * ld] = scale * s20;
      S[o + 2 * ld + 1] = scale * s21;
      S[o + 2 * ld + 2] = scale * s22;
      S[o + 2 * ld + 3] = scale * s23;
      S[o + 3 * ld] = scale * s30;
      S[o + 3 * ld + 1] = scale * s31;
      S[o + 3 * ld + 2] = scale * s32;
      S[o + 3 * ld + 3] = scale * s33;
    }
    for (; c < nc; c++) {
      const b0 = (br + c) * n;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let x = 0; x < n; x++) {
        const y = b[b0 + x];
        s0 += a[a0 + x] * y;
        s1 += a[a1 + x] * y;
        s2 += a[a2 + x] * y;
        s3 += a[a3 + x] * y;
      }
      S[r * ld + c] = scale * s0;
      S[(r + 1) * ld + c] = scale * s1;
      S[(r + 2) * ld + c] = scale * s2;
      S[(r + 3) * ld + c] = scale * s3;
    }
  }
  for (; r < nr; r++) {
    const a0 = (ar + r) * n;
    for (let c = 0; c < nc; c++) {
      const b0 = (br + c) * n;
      let s = 0;
      for (let x = 0; x < n; x++) s += a[a0 + x] * b[b0 + x];
      S[r * ld + c] = scale * s;
    }
  }
}

/** out[(or+r)·m + y] += Σ_{c<nc} P[r·ld + c] · x_{xr+c}[y] for r < nr, y < m (P times a row block of X). */
export function pxTile(
  P: Float32Array,
  ld: number,
  nr: number,
  nc: number,
  x: Float32Array,
  xr: number,
  m: number,
  out: Float32Array,
  or: number,
): void {
  let r = 0;
  for (; r + 3 < nr; r += 4) {
    const p0 = r * ld;
    const p1 = p0 + ld;
    const p2 = p1 + ld;
    const p3 = p2 + ld;
    let y = 0;
    for (; y + 3 < m; y += 4) {
      let o00 = 0;
      let o01 = 0;
      let o02 = 0;
      let o03 = 0;
      let o10 = 0;
      let o11 = 0;
      let o12 = 0;
      let o13 = 0;
      let o20 = 0;
      let o21 = 0;
      let o22 = 0;
      let o23 = 0;
      let o30 = 0;
      let o31 = 0;
      let o32 = 0;
      let o33 = 0;
      for (let c = 0; c < nc; c++) {
        const xo = (xr + c) * m + y;
        const v0 = x[xo];
        const v1 = x[xo + 1];
        const v2 = x[xo + 2];
        const v3 = x[xo + 3];
        const w0 = P[p0 + c];
        const w1 = P[p1 + c];
        const w2 = P[p2 + c];
        const w3 = P[p3 + c];
        o00 += w0 * v0;
        o01 += w0 * v1;
        o02 += w0 * v2;
        o03 += w0 * v3;
        o10 += w1 * v0;
        o11 += w1 * v1;
        o12 += w1 * v2;
        o13 += w1 * v3;
        o20 += w2 * v0;
        o21 += w2 * v1;
        o22 += w2 * v2;
        o23 += w2 * v3;
        o30 += w3 * v0;
        o31 += w3 * v1;
        o32 += w3 * v2;
        o33 += w3 * v3;
      }
      const o = (or + r) * m + y;
      out[o] += o00;
      out[o + 1] += o01;
      out[o + 2] += o02;
      out[o + 3] += o03;
      out[o + m] += o10;
      out[o + m + 1] += o11;
      out[o + m + 2] += o12;
      out[o + m + 3] += o13;
      out[o + 2 * m] += o20;
      out[o + 2 * m + 1] += o21;
      out[o + 2 * m + 2] += o22;
      out[o + 2 * m + 3] += o23;
      out[o + 3 * m] += o30;
      out[o + 3 * m + 1] += o31;
      out[o + 3 * m + 2] += o32;
      out[o + 3 * m + 3] += o33;
    }
    for (; y < m; y++) {
      let o0 = 0;
      let o1 = 0;
      let o2 = 0;
      let o3 = 0;
      for (let c = 0; c < nc; c++) {
        const v = x[(xr + c) * m + y];
        o0 += P[p0 + c] * v;
        o1 += P[p1 + c] * v;
        o2 += P[p2 + c] * v;
        o3 += P[p3 + c] * v;
      }
      const o = (or + r) * m + y;
      out[o] += o0;
      out[o + m] += o1;
      out[o + 2 * m] += o2;
      out[o + 3 * m] += o3;
    }
  }
  for (; r < nr; r++) {
    for (let y = 0; y < m; y++) {
      let o = 0;
      for (let c = 0; c < nc; c++) o += P[r * ld + c] * x[(xr + c) * m + y];
      out[(or + r) * m + y] += o;
    }
  }
}

/** out[(or+c)·m + y] += Σ_{r<nr} P[r·ld + c] · x_{xr+r}[y] for c < nc (Pᵀ times a row block of X). */
export function ptxTile(
  P: Float32Array,
  ld: number,
  nr: number,
  nc: number,
  x: Float32Array,
  xr: number,
  m: number,
  out: Float32Array,
  or: number,
): void {
  let c = 0;
  for (; c + 3 < nc; c += 4) {
    let y = 0;
    for (; y + 3 < m; y += 4) {
      let o00 = 0;
      let o01 = 0;
      let o02 = 0;
      let o03 = 0;
      let o10 = 0;
      let o11 = 0;
      let o12 = 0;
      let o13 = 0;
      let o20 = 0;
      let o21 = 0;
      let o22 = 0;
      let o23 = 0;
      let o30 = 0;
      let o31 = 0;
      let o32 = 0;
      let o33 = 0;
      for (let r = 0; r < nr; r++) {
        const xo = (xr + r) * m + y;
        const v0 = x[xo];
        const v1 = x[xo + 1];
        const v2 = x[xo + 2];
        const v3 = x[xo + 3];
        const po = r * ld + c;
        const w0 = P[po];
        const w1 = P[po + 1];
        const w2 = P[po + 2];
        const w3 = P[po + 3];
        o00 += w0 * v0;
        o01 += w0 * v1;
        o02 += w0 * v2;
        o03 += w0 * v3;
        o10 += w1 * v0;
        o11 += w1 * v1;
        o12 += w1 * v2;
        o13 += w1 * v3;
        o20 += w2 * v0;
        o21 += w2 * v1;
        o22 += w2 * v2;
        o23 += w2 * v3;
        o30 += w3 * v0;
        o31 += w3 * v1;
        o32 += w3 * v2;
        o33 += w3 * v3;
      }
      const o = (or + c) * m + y;
      out[o] += o00;
      out[o + 1] += o01;
      out[o + 2] += o02;
      out[o + 3] += o03;
      out[o + m] += o10;
      out[o + m + 1] += o11;
      out[o + m + 2] += o12;
      out[o + m + 3] += o13;
      out[o + 2 * m] += o20;
      out[o + 2 * m + 1] += o21;
      out[o + 2 * m + 2] += o22;
      out[o + 2 * m + 3] += o23;
      out[o + 3 * m] += o30;
      out[o + 3 * m + 1] += o31;
      out[o + 3 * m + 2] += o32;
      out[o + 3 * m + 3] += o33;
    }
    for (; y < m; y++) {
      for (let cc = c; cc < c + 4; cc++) {
        let o = 0;
        for (let r = 0; r < nr; r++) o += P[r * ld + cc] * x[(xr + r) * m + y];
        out[(or + cc) * m + y] += o;
      }
    }
  }
  for (; c < nc; c++) {
    for (let y = 0; y < m; y++) {
      let o = 0;
      for (let r = 0; r < nr; r++) o += P[r * ld + c] * x[(xr + r) * m + y];
      out[(or + c) * m + y] += o;
    }
  }
}

/**
 * Online-softmax forward over tiles. Query row t sits at key index n0 + t; keys [0, n0) come from
 * the cache; token t reads keys (n0 + t − W, n0 + t]. Writes out [T, dv] and, when given, each
 * row's log-sum-exp (for the backward).
 */
export function tiledForward(
  q: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  T: number,
  n0: number,
  dk: number,
  dv: number,
  beta: number,
  W: number,
  out: Float32Array,
  lse: Float32Array | null,
): void {
  const B = SOFTMAX_TILE;
  const S = new Float32Array(B * B);
  const acc = new Float32Array(B * dv);
  const rowMax = new Float64Array(B);
  const rowSum = new Float64Array(B);
  for (let i0 = 0; i0 < T; i0 += B) {
    const nr = Math.min(B, T - i0);
    acc.fill(0);
    rowMax.fill(Number.NEGATIVE_INFINITY);
    rowSum.fill(0);
    const firstKey = Math.max(0, n0 + i0 - W + 1);
    const lastKey = n0 + i0 + nr - 1;
    for (let j0 = firstKey; j0 <= lastKey; j0 += B) {
      const nc = Math.min(B, lastKey - j0 + 1);
      abtTile(q, i0, nr, keys, j0, nc, dk, beta, S, B);
      for (let r = 0; r < nr; r++) {
        const self = n0 + i0 + r;
        // Valid keys of this row inside the tile: [lo, hi] (causal and window); the rest get p = 0.
        const lo = Math.max(0, self - W + 1 - j0);
        const hi = Math.min(nc - 1, self - j0);
        const o = r * B;
        if (lo > hi) {
          S.fill(0, o, o + nc);
          continue;
        }
        let m = rowMax[r];
        for (let c = lo; c <= hi; c++) if (S[o + c] > m) m = S[o + c];
        const rescale = Math.exp(rowMax[r] - m);
        if (rescale !== 1) {
          const a = r * dv;
          for (let y = 0; y < dv; y++) acc[a + y] *= rescale;
        }
        let sum = rowSum[r] * rescale;
        for (let c = 0; c < lo; c++) S[o + c] = 0;
        for (let c = lo; c <= hi; c++) {
          const p = Math.exp(S[o + c] - m);
          S[o + c] = p;
          sum += p;
        }
        for (let c = hi + 1; c < nc; c++) S[o + c] = 0;
        rowMax[r] = m;
        rowSum[r] = sum;
      }
      pxTile(S, B, nr, nc, values, j0, dv, acc, 0);
    }
    for (let r = 0; r < nr; r++) {
      const i = i0 + r;
      const inv = 1 / rowSum[r];
      for (let y = 0; y < dv; y++) out[i * dv + y] = acc[r * dv + y] * inv;
      if (lse) lse[i] = rowMax[r] + Math.log(rowSum[r]);
    }
  }
}

/**
 * Gradients of the tiled forward (from an empty cache), flash-attention style: per key block and
 * query block, recompute P = exp(S − lse) from the saved row log-sum-exp, then
 * dV += Pᵀ·dY, dP = dY·Vᵀ, dS = β·P∘(dP − D), dQ += dS·K, dK += dSᵀ·Q (D_t = dy_t·y_t).
 */
export function tiledBackward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  dy: Float32Array,
  lse: Float32Array,
  rowDot: Float32Array,
  T: number,
  dk: number,
  dv: number,
  beta: number,
  W: number,
  gq: Float32Array,
  gk: Float32Array,
  gv: Float32Array,
): void {
  const B = SOFTMAX_TILE;
  const P = new Float32Array(B * B);
  const dP = new Float32Array(B * B);
  for (let j0 = 0; j0 < T; j0 += B) {
    const nc = Math.min(B, T - j0);
    const lastQuery = Math.min(T - 1, j0 + nc - 1 + W - 1);
    for (let i0 = j0 - (j0 % B); i0 <= lastQuery; i0 += B) {
      const nr = Math.min(B, T - i0);
      abtTile(q, i0, nr, k, j0, nc, dk, beta, P, B);
      abtTile(dy, i0, nr, v, j0, nc, dv, 1, dP, B);
      let any = false;
      for (let r = 0; r < nr; r++) {
        const i = i0 + r;
        const lo = Math.max(0, i - W + 1 - j0);
        const hi = Math.min(nc - 1, i - j0);
        const o = r * B;
        for (let c = 0; c < nc; c++) {
          if (c < lo || c > hi) {
            P[o + c] = 0;
            dP[o + c] = 0;
            continue;
          }
          const p = Math.exp(P[o + c] - lse[i]);
          P[o + c] = p;
          dP[o + c] = beta * p * (dP[o + c] - rowDot[i]);
          any = true;
        }
      }
      if (!any) continue;
      ptxTile(P, B, nr, nc, dy, i0, dv, gv, j0);
      pxTile(dP, B, nr, nc, k, j0, dk, gq, i0);
      ptxTile(dP, B, nr, nc, q, i0, dk, gk, j0);
    }
  }
}
