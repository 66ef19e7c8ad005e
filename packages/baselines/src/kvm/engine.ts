// The KVM machinery shared by the float64 reference and the float32 fast path: growable rows,
// the eviction of a block (append most novel / merge winner-take-all), one query's read and the
// backward of both. Generic over the array type so both paths run the same definition.
import { type FloatArray, NORM_EPS } from '../common.js';
import { type ResolvedKvmConfig, rowsFor } from './state.js';

type Ctor<A> = new (n: number) => A;

/** Compressed rows with spare capacity: unit keys K, unit value directions U, radii ρ. */
export type Rows<A extends FloatArray> = {
  n: number;
  K: A;
  U: A;
  rho: A;
  dk: number;
  dv: number;
  ctor: Ctor<A>;
};

export function makeRows<A extends FloatArray>(
  ctor: Ctor<A>,
  dk: number,
  dv: number,
  capacity: number,
): Rows<A> {
  const cap = Math.max(1, capacity);
  return { n: 0, K: new ctor(cap * dk), U: new ctor(cap * dv), rho: new ctor(cap), dk, dv, ctor };
}

function reserve<A extends FloatArray>(rows: Rows<A>, n: number): void {
  if (n <= rows.rho.length) return;
  const cap = Math.max(n, 2 * rows.rho.length);
  const grow = (x: A, w: number) => {
    const y = new rows.ctor(cap * w);
    y.set(x);
    return y;
  };
  rows.K = grow(rows.K, rows.dk);
  rows.U = grow(rows.U, rows.dv);
  rows.rho = grow(rows.rho, 1);
}

export function copyRows<A extends FloatArray>(rows: Rows<A>): Rows<A> {
  return {
    ...rows,
    K: rows.K.slice(0, rows.n * rows.dk) as A,
    U: rows.U.slice(0, rows.n * rows.dv) as A,
    rho: rows.rho.slice(0, rows.n) as A,
  };
}

/** The discrete decisions of one eviction (constants for the backward). */
export type EvictRecord = {
  sizeBefore: number;
  /** Evicted-token indices that became rows sizeBefore, sizeBefore+1, … (most novel first). */
  appended: number[];
  /** Row each evicted token went to (an appended token: its own row). */
  assignment: Int32Array;
  /** Whether token j was merged (false for appended tokens). */
  merged: Uint8Array;
};

function norm(x: ArrayLike<number>, o: number, d: number): number {
  let s = 0;
  for (let i = 0; i < d; i++) s += x[o + i] * x[o + i];
  return Math.sqrt(s);
}

/** argmax_i k·K_i over rows [0, n) (ties: lowest i) and the best similarity. */
function mostSimilar<A extends FloatArray>(
  rows: Rows<A>,
  n: number,
  k: FloatArray,
  ko: number,
): [number, number] {
  let best = -1;
  let bestSim = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let x = 0; x < rows.dk; x++) s += k[ko + x] * rows.K[i * rows.dk + x];
    if (s > bestSim) {
      bestSim = s;
      best = i;
    }
  }
  return [best, bestSim];
}

/**
 * Compresses m evicted tokens (unit keys k, values v, rows first..first+m of those arrays) into the
 * rows, τ already counting them. Appends the most novel (1 − max cosine to the existing rows) up to
 * the budget, then merges every other token into its most similar row (rows as after the appends,
 * before any merge): K ← normalise(K + Σk), U ← normalise(ρU + Σv), ρ ← (ρ + Σ‖v‖)/(1 + m_i).
 */
export function evictTokens<A extends FloatArray>(
  rows: Rows<A>,
  k: FloatArray,
  v: FloatArray,
  first: number,
  m: number,
  tau: number,
  config: ResolvedKvmConfig,
): EvictRecord {
  const { dk, dv } = rows;
  const n0 = rows.n;
  const add = Math.min(m, Math.max(0, rowsFor(config.budget, tau) - n0));
  // One similarity pass against the old rows serves both novelty and the merge winner.
  const bestOld = new Int32Array(m);
  const bestOldSim = new Float64Array(m);
  const novelty = new Float64Array(m);
  for (let j = 0; j < m; j++) {
    [bestOld[j], bestOldSim[j]] = mostSimilar(rows, n0, k, (first + j) * dk);
    novelty[j] = n0 === 0 ? Number.POSITIVE_INFINITY : 1 - bestOldSim[j];
  }
  const order = Array.from({ length: m }, (_, j) => j).sort(
    (a, b) => novelty[b] - novelty[a] || a - b,
  );
  const appended = order.slice(0, add);
  const assignment = new Int32Array(m);
  const merged = new Uint8Array(m).fill(1);
  reserve(rows, n0 + add);
  for (let r = 0; r < add; r++) {
    const j = appended[r];
    const i = n0 + r;
    const ko = (first + j) * dk;
    const vo = (first + j) * dv;
    for (let x = 0; x < dk; x++) rows.K[i * dk + x] = k[ko + x];
    const vn = norm(v, vo, dv);
    const inv = 1 / Math.max(vn, NORM_EPS);
    for (let x = 0; x < dv; x++) rows.U[i * dv + x] = v[vo + x] * inv;
    rows.rho[i] = vn;
    assignment[j] = i;
    merged[j] = 0;
  }
  rows.n = n0 + add;
  for (let j = 0; j < m; j++) {
    if (!merged[j]) continue;
    // Winner over old rows (known) and the appended ones; a new row wins only if strictly closer.
    let best = bestOld[j];
    let bestSim = bestOldSim[j];
    for (let i = n0; i < rows.n; i++) {
      let s = 0;
      for (let x = 0; x < dk; x++) s += k[(first + j) * dk + x] * rows.K[i * dk + x];
      if (s > bestSim) {
        bestSim = s;
        best = i;
      }
    }
    assignment[j] = best;
  }
  const sumK = new Float64Array(rows.n * dk);
  const sumV = new Float64Array(rows.n * dv);
  const sumNorm = new Float64Array(rows.n);
  const cnt = new Int32Array(rows.n);
  for (let j = 0; j < m; j++) {
    if (!merged[j]) continue;
    const i = assignment[j];
    cnt[i]++;
    for (let x = 0; x < dk; x++) sumK[i * dk + x] += k[(first + j) * dk + x];
    for (let x = 0; x < dv; x++) sumV[i * dv + x] += v[(first + j) * dv + x];
    sumNorm[i] += norm(v, (first + j) * dv, dv);
  }
  for (let i = 0; i < rows.n; i++) {
    if (cnt[i] === 0) continue;
    for (let x = 0; x < dk; x++) sumK[i * dk + x] += rows.K[i * dk + x];
    for (let x = 0; x < dv; x++) sumV[i * dv + x] += rows.rho[i] * rows.U[i * dv + x];
    const nk = Math.max(norm(sumK, i * dk, dk), NORM_EPS);
    const nv = Math.max(norm(sumV, i * dv, dv), NORM_EPS);
    for (let x = 0; x < dk; x++) rows.K[i * dk + x] = sumK[i * dk + x] / nk;
    for (let x = 0; x < dv; x++) rows.U[i * dv + x] = sumV[i * dv + x] / nv;
    rows.rho[i] = (rows.rho[i] + sumNorm[i]) / (1 + cnt[i]);
  }
  return { sizeBefore: n0, appended, assignment, merged };
}

/** Gradients w.r.t. the rows (same layout as Rows). */
export type RowGrads<A extends FloatArray> = { gK: A; gU: A; gRho: A };

/** d(x/max(‖x‖,eps)) backward for one vector: returns dx given y = x/‖x‖, ‖x‖ and dy (into out). */
function unitBackward(
  y: ArrayLike<number>,
  yo: number,
  n: number,
  dy: ArrayLike<number>,
  dyo: number,
  d: number,
  out: Float64Array,
): void {
  if (n <= NORM_EPS) {
    for (let i = 0; i < d; i++) out[i] = dy[dyo + i] / NORM_EPS;
    return;
  }
  let p = 0;
  for (let i = 0; i < d; i++) p += y[yo + i] * dy[dyo + i];
  for (let i = 0; i < d; i++) out[i] = (dy[dyo + i] - y[yo + i] * p) / n;
}

/**
 * Reverses one eviction: given gradients w.r.t. the rows after it (g, rows [0, after.n)), adds the
 * evicted tokens' key/value gradients (gk, gv at rows first..first+m) and turns g into gradients
 * w.r.t. the rows before it (rows ≥ sizeBefore zeroed).
 */
export function evictBackward<A extends FloatArray>(
  before: Rows<A>,
  after: Rows<A>,
  rec: EvictRecord,
  k: FloatArray,
  v: FloatArray,
  first: number,
  g: RowGrads<A>,
  gk: FloatArray,
  gv: FloatArray,
): void {
  const { dk, dv } = after;
  const m = rec.assignment.length;
  const tk = new Float64Array(dk);
  const tv = new Float64Array(dv);
  // Pre-merge row i: an old row (before) or a freshly appended token.
  const preK = (i: number, x: number) =>
    i < rec.sizeBefore
      ? before.K[i * dk + x]
      : k[(first + rec.appended[i - rec.sizeBefore]) * dk + x];
  const preRho = (i: number) =>
    i < rec.sizeBefore
      ? before.rho[i]
      : norm(v, (first + rec.appended[i - rec.sizeBefore]) * dv, dv);
  const preU = (i: number, x: number) => {
    if (i < rec.sizeBefore) return before.U[i * dv + x];
    const vo = (first + rec.appended[i - rec.sizeBefore]) * dv;
    return v[vo + x] / Math.max(norm(v, vo, dv), NORM_EPS);
  };
  const members: number[][] = Array.from({ length: after.n }, () => []);
  for (let j = 0; j < m; j++) if (rec.merged[j]) members[rec.assignment[j]].push(j);
  for (let i = 0; i < after.n; i++) {
    const js = members[i];
    if (js.length === 0) continue;
    // K_i = sK/‖sK‖ with sK = K_pre + Σ k_j
    const sK = new Float64Array(dk);
    for (let x = 0; x < dk; x++) sK[x] = preK(i, x);
    for (const j of js) for (let x = 0; x < dk; x++) sK[x] += k[(first + j) * dk + x];
    unitBackward(after.K, i * dk, Math.max(norm(sK, 0, dk), NORM_EPS), g.gK, i * dk, dk, tk);
    for (const j of js) for (let x = 0; x < dk; x++) gk[(first + j) * dk + x] += tk[x];
    for (let x = 0; x < dk; x++) g.gK[i * dk + x] = tk[x];
    // U_i = sU/‖sU‖ with sU = ρ_pre U_pre + Σ v_j; ρ_i = (ρ_pre + Σ‖v_j‖)/(1 + m_i)
    const rho0 = preRho(i);
    const sU = new Float64Array(dv);
    for (let x = 0; x < dv; x++) sU[x] = rho0 * preU(i, x);
    for (const j of js) for (let x = 0; x < dv; x++) sU[x] += v[(first + j) * dv + x];
    unitBackward(after.U, i * dv, Math.max(norm(sU, 0, dv), NORM_EPS), g.gU, i * dv, dv, tv);
    const gRhoNew = g.gRho[i] / (1 + js.length);
    for (const j of js) {
      const vo = (first + j) * dv;
      const vn = Math.max(norm(v, vo, dv), NORM_EPS);
      for (let x = 0; x < dv; x++) gv[vo + x] += tv[x] + (gRhoNew * v[vo + x]) / vn;
    }
    let gRho0 = gRhoNew;
    for (let x = 0; x < dv; x++) {
      gRho0 += preU(i, x) * tv[x];
      g.gU[i * dv + x] = rho0 * tv[x];
    }
    g.gRho[i] = gRho0;
  }
  // Appended rows: K = k_j, U = v_j/‖v_j‖, ρ = ‖v_j‖.
  for (let r = 0; r < rec.appended.length; r++) {
    const i = rec.sizeBefore + r;
    const j = rec.appended[r];
    const ko = (first + j) * dk;
    const vo = (first + j) * dv;
    for (let x = 0; x < dk; x++) gk[ko + x] += g.gK[i * dk + x];
    const vn = norm(v, vo, dv);
    const u = new Float64Array(dv);
    for (let x = 0; x < dv; x++) u[x] = v[vo + x] / Math.max(vn, NORM_EPS);
    unitBackward(u, 0, vn, g.gU, i * dv, dv, tv);
    for (let x = 0; x < dv; x++) gv[vo + x] += tv[x] + g.gRho[i] * u[x];
    for (let x = 0; x < dk; x++) g.gK[i * dk + x] = 0;
    for (let x = 0; x < dv; x++) g.gU[i * dv + x] = 0;
    g.gRho[i] = 0;
  }
}

/** Softmax read of one query over sinks, rows and window tokens [w0, w1] (unit keys); writes p. */
export function readQuery<A extends FloatArray>(
  q: FloatArray,
  qo: number,
  beta: number,
  sinkK: FloatArray,
  sinkV: FloatArray,
  ns: number,
  rows: Rows<A>,
  k: FloatArray,
  v: FloatArray,
  w0: number,
  w1: number,
  p: FloatArray,
  y: FloatArray,
  yo: number,
): void {
  const { dk, dv, n } = rows;
  const nw = w1 - w0 + 1;
  const dot = (a: FloatArray, ao: number) => {
    let s = 0;
    for (let i = 0; i < dk; i++) s += q[qo + i] * a[ao + i];
    return beta * s;
  };
  let max = Number.NEGATIVE_INFINITY;
  for (let s = 0; s < ns; s++) max = Math.max(max, (p[s] = dot(sinkK, s * dk)));
  for (let i = 0; i < n; i++) max = Math.max(max, (p[ns + i] = dot(rows.K, i * dk)));
  for (let s = 0; s < nw; s++) max = Math.max(max, (p[ns + n + s] = dot(k, (w0 + s) * dk)));
  let sum = 0;
  for (let x = 0; x < ns + n + nw; x++) sum += p[x] = Math.exp(p[x] - max);
  for (let j = 0; j < dv; j++) y[yo + j] = 0;
  for (let x = 0; x < ns + n + nw; x++) {
    const a = (p[x] /= sum);
    if (x < ns) for (let j = 0; j < dv; j++) y[yo + j] += a * sinkV[x * dv + j];
    else if (x < ns + n) {
      const i = x - ns;
      const b = a * rows.rho[i];
      for (let j = 0; j < dv; j++) y[yo + j] += b * rows.U[i * dv + j];
    } else for (let j = 0; j < dv; j++) y[yo + j] += a * v[(w0 + x - ns - n) * dv + j];
  }
}

/**
 * Backward of one read (p from `readQuery`, y its output): accumulates dq̂ (at qo), gradients of the
 * sink and window tokens (sinks are tokens 0..ns−1 of k, v) and of the rows.
 */
export function readQueryBackward<A extends FloatArray>(
  q: FloatArray,
  qo: number,
  beta: number,
  ns: number,
  rows: Rows<A>,
  k: FloatArray,
  v: FloatArray,
  w0: number,
  w1: number,
  p: FloatArray,
  y: FloatArray,
  dy: FloatArray,
  dyo: number,
  gq: FloatArray,
  gk: FloatArray,
  gv: FloatArray,
  g: RowGrads<A>,
): void {
  const { dk, dv, n } = rows;
  let D = 0;
  for (let j = 0; j < dv; j++) D += dy[dyo + j] * y[j];
  // A token item: key/value row `t` of k/v.
  const token = (x: number, t: number) => {
    let dp = 0;
    for (let j = 0; j < dv; j++) {
      dp += dy[dyo + j] * v[t * dv + j];
      gv[t * dv + j] += p[x] * dy[dyo + j];
    }
    const ds = beta * p[x] * (dp - D);
    for (let i = 0; i < dk; i++) {
      gq[qo + i] += ds * k[t * dk + i];
      gk[t * dk + i] += ds * q[qo + i];
    }
  };
  for (let s = 0; s < ns; s++) token(s, s);
  for (let r = 0; r < n; r++) {
    const x = ns + r;
    let du = 0;
    for (let j = 0; j < dv; j++) du += dy[dyo + j] * rows.U[r * dv + j];
    const ds = beta * p[x] * (rows.rho[r] * du - D);
    g.gRho[r] += p[x] * du;
    for (let j = 0; j < dv; j++) g.gU[r * dv + j] += p[x] * rows.rho[r] * dy[dyo + j];
    for (let i = 0; i < dk; i++) {
      gq[qo + i] += ds * rows.K[r * dk + i];
      g.gK[r * dk + i] += ds * q[qo + i];
    }
  }
  for (let s = w0; s <= w1; s++) token(ns + n + s - w0, s);
}
