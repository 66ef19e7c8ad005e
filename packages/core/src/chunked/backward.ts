// The chunked path's reverse-scan backward (ALGORITHM.md §5, "Efficient form"). A forward sweep
// makes only the absorb decisions (reads do not change the state) and records them on a tape;
// then chunks run in reverse carrying G = ∂L/∂(rows) from later chunks. The dictionary at each
// chunk start comes back by UNDOING the absorb (`mean`: subtract the float64 row sums) or, for
// `ema` (where an undo would divide by 1−η and amplify rounding), by replaying absorbs from
// checkpoints taken every ⌈√absorbs⌉ chunks. No per-chunk snapshots.
import type { OvqConfig, OvqTrace, Seq } from '../ovq/types.js';
import {
  type CheckedStateGradient,
  checkStateGradient,
  finalShape,
  type OvqStateGradient,
  refuseDataDependentShape,
  type TbpttOptions,
} from '../tbptt/state-gradient.js';
import { requireFiniteArray, resolveOvqConfig, validateSeq } from '../validate.js';
import {
  type AbsorbTape,
  checkOut,
  createTape,
  resolveInitialState,
  rowsNeeded,
  stageTokens,
  traceFromTape,
} from './forward.js';
import { HeadWorkspace } from './head.js';
import { matmulABt, transpose } from './kernels.js';
import { chunkSoftmax, ReadScratch } from './read.js';

export type ChunkedGradients = {
  /** ∂L/∂q, ∂L/∂k [seqLen, keyDim] and ∂L/∂v [seqLen, valueDim] for L = Σ dOutput ⊙ output. */
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  dbeta: number;
  /** ∂L/∂(initial state): sized to `options.initialState`'s rows and pending tokens (empty without one). */
  dInitialState: OvqStateGradient<Float32Array>;
  /** The absorb decisions of the forward pass (treated as constants). */
  trace: OvqTrace;
};

export type ChunkedBackwardOptions = TbpttOptions & {
  /** Preallocated gradient buffers; every element of each given buffer is written. */
  out?: { dq?: Float32Array; dk?: Float32Array; dv?: Float32Array };
};

/** Scratch of the reverse scan: O(C·(N + C) + N·d) floats, independent of T. */
export class BackwardScratch extends ReadScratch {
  readonly dl: Float32Array;
  readonly wT: Float32Array;
  readonly gOut: Float32Array;
  readonly gOutT: Float32Array;
  readonly qT: Float32Array;
  readonly u: Float32Array;
  readonly pendGrad: Float32Array;
  readonly rowGradK: Float32Array;
  readonly rowGradV: Float32Array;
  readonly dkHat: Float32Array;
  readonly dvChunk: Float32Array;
  readonly kNorm: Float64Array;
  readonly colSum: Float64Array;
  readonly gk: Float64Array;
  readonly gv: Float64Array;
  readonly members: Float64Array;

  constructor(C: number, rowsCap: number, dk: number, dv: number) {
    super(C, rowsCap, dk, dv);
    const wide = C * (rowsCap + C);
    this.dl = new Float32Array(wide);
    this.wT = new Float32Array(wide);
    this.gOut = new Float32Array(C * dv);
    this.gOutT = new Float32Array(dv * C);
    this.qT = new Float32Array(dk * C);
    this.u = new Float32Array(C * dk);
    this.pendGrad = new Float32Array(C * Math.max(dk, dv));
    this.rowGradK = new Float32Array(rowsCap * dk);
    this.rowGradV = new Float32Array(rowsCap * dv);
    this.dkHat = new Float32Array(C * dk);
    this.dvChunk = new Float32Array(C * dv);
    this.kNorm = new Float64Array(C);
    this.colSum = new Float64Array(rowsCap + C);
    this.gk = new Float64Array(rowsCap * dk);
    this.gv = new Float64Array(rowsCap * dv);
    this.members = new Float64Array(rowsCap);
  }
}

type Checkpoint = { size: number; counts: Float64Array; keys: Float64Array; values: Float64Array };

function takeCheckpoint(ws: HeadWorkspace): Checkpoint {
  const { size, keyDim: dk, valueDim: dv } = ws;
  return {
    size,
    counts: ws.counts.slice(0, size),
    keys: ws.keyAcc.slice(0, size * dk),
    values: ws.valueAcc.slice(0, size * dv),
  };
}

function restoreCheckpoint(ws: HeadWorkspace, cp: Checkpoint): void {
  ws.counts.set(cp.counts);
  ws.keyAcc.set(cp.keys);
  ws.valueAcc.set(cp.values);
  ws.size = cp.size;
  for (let i = 0; i < cp.size; i++) ws.refreshRow(i);
}

/** dx for x̂ = x / max(‖x‖, 1e-12) from dx̂ (float32 rows), written to out[oOff…]. */
function normalizeBackwardInto(
  xHat: Float32Array,
  dxHat: Float32Array,
  at: number,
  dim: number,
  rawNorm: number,
  normalize: boolean,
  out: Float32Array,
  oOff: number,
): void {
  if (!normalize) {
    for (let d = 0; d < dim; d++) out[oOff + d] = dxHat[at + d];
    return;
  }
  let proj = 0;
  // Below the clamp the divisor is a constant, so the projection term vanishes.
  if (rawNorm > 1e-12) for (let d = 0; d < dim; d++) proj += xHat[at + d] * dxHat[at + d];
  const inv = 1 / Math.max(rawNorm, 1e-12);
  for (let d = 0; d < dim; d++) out[oOff + d] = (dxHat[at + d] - xHat[at + d] * proj) * inv;
}

/**
 * Gradient flowing into the tokens of absorb a (from later chunks' reads of the rows they joined),
 * then G moved to the rows before the absorb: `mean` passes G through unchanged (rows are sums);
 * `ema` scales member shares by η/m and the kept part by 1−η. Spawned rows are dropped.
 */
function absorbBackward(ws: HeadWorkspace, b: BackwardScratch, tape: AbsorbTape, a: number): void {
  const { keyDim: dk, valueDim: dv, chunkSize: C } = ws;
  const { gk, gv, dkHat, dvChunk, members } = b;
  const at = a * C;
  const sizeBefore = tape.sizeBefore[a];
  const update = ws.config.update;
  if (update.kind === 'mean') {
    for (let j = 0; j < C; j++) {
      const code = tape.codes[at + j];
      const row = code < 0 ? ~code : code;
      for (let d = 0; d < dk; d++) dkHat[j * dk + d] = gk[row * dk + d];
      for (let d = 0; d < dv; d++) dvChunk[j * dv + d] = gv[row * dv + d];
    }
  } else {
    const rate = update.rate;
    for (let j = 0; j < C; j++) {
      const code = tape.codes[at + j];
      if (code >= 0) members[code] += 1;
    }
    for (let j = 0; j < C; j++) {
      const row = tape.codes[at + j];
      if (row < 0) continue;
      const share = rate / members[row];
      for (let d = 0; d < dk; d++) dkHat[j * dk + d] = gk[row * dk + d] * share;
      for (let d = 0; d < dv; d++) dvChunk[j * dv + d] = gv[row * dv + d] * share;
    }
    for (let j = 0; j < C; j++) {
      const row = tape.codes[at + j];
      if (row < 0 || members[row] === 0) continue;
      members[row] = 0;
      for (let d = 0; d < dk; d++) gk[row * dk + d] *= 1 - rate;
      for (let d = 0; d < dv; d++) gv[row * dv + d] *= 1 - rate;
    }
    for (let j = 0; j < C; j++) {
      const code = tape.codes[at + j];
      if (code >= 0) continue;
      const row = ~code;
      for (let d = 0; d < dk; d++) dkHat[j * dk + d] = gk[row * dk + d];
      for (let d = 0; d < dv; d++) dvChunk[j * dv + d] = gv[row * dv + d];
    }
  }
  const sizeAfter = ws.size;
  gk.fill(0, sizeBefore * dk, sizeAfter * dk);
  gv.fill(0, sizeBefore * dv, sizeAfter * dv);
}

/**
 * Backward of one chunk's reads (`rows` queries staged in b.qHat, the r-th at pending slot p0 + r;
 * k̂/v in pending slots 0…p0+rows−1; dOutput in b.gOut): adds into b.dkHat/b.dvChunk (slots
 * 0…p0+rows−1), folds row gradients into G and writes dq. Returns this chunk's ∂L/∂β. Slots
 * below p0 hold tokens an earlier call left pending (an initial state's): keys, never queries.
 */
function readBackward(
  ws: HeadWorkspace,
  b: BackwardScratch,
  rows: number,
  p0: number,
  dq: Float32Array,
  dqOff: number,
): number {
  const { keyDim: dk, valueDim: dv, size: n, rowsCap, chunkSize: C } = ws;
  const beta = ws.config.beta;
  const gaussian = ws.config.read === 'gaussian';
  const mean = ws.config.update.kind === 'mean';
  const P = p0 + rows;
  const stride = chunkSoftmax(ws, b, rows, p0);
  const { weights: W, dl, wT, gOut, gOutT, qHat, qT, u, pendGrad, colSum } = b;
  const wide = n + P;
  // Normalise the weights: W = softmax probabilities p.
  for (let r = 0; r < rows; r++) {
    const inv = b.invSum[r];
    for (let i = 0; i < wide; i++) W[r * stride + i] *= inv;
  }
  // dp = g·V over rows and pending tokens.
  matmulABt(gOut, 0, dv, rows, ws.values, 0, dv, n, dv, dl, 0, stride, false);
  matmulABt(gOut, 0, dv, rows, ws.pendValues, 0, dv, P, dv, dl, n, stride, false);
  // ∂L/∂V = pᵀ g (rows into rowGradV, pending tokens into dvChunk).
  transpose(W, 0, stride, rows, wide, wT, 0, rows);
  transpose(gOut, 0, dv, rows, dv, gOutT, 0, rows);
  matmulABt(wT, 0, rows, n, gOutT, 0, rows, dv, rows, b.rowGradV, 0, dv, false);
  matmulABt(wT, n * rows, rows, P, gOutT, 0, rows, dv, rows, b.dvChunk, 0, dv, true);
  // dℓ = p ⊙ (dp − Σ p·dp); masked slots have p = 0.
  let dbeta = 0;
  colSum.fill(0, 0, wide);
  for (let r = 0; r < rows; r++) {
    const base = r * stride;
    let gy = 0;
    for (let i = 0; i < wide; i++) gy += W[base + i] * dl[base + i];
    for (let i = 0; i < wide; i++) {
      const x = W[base + i] * (dl[base + i] - gy);
      dl[base + i] = x;
      colSum[i] += x;
    }
  }
  if (gaussian) {
    for (let i = 0; i < n; i++) dbeta -= colSum[i] * ws.halfNorms[i];
    for (let s = 0; s < P; s++) dbeta -= colSum[n + s] * ws.pendHalfNorms[s];
  }
  // u = dℓ·K (dq̂ = β u; ∂L/∂β gets q̂·u).
  matmulABt(dl, 0, stride, rows, ws.keysT, 0, rowsCap, dk, n, u, 0, dk, false);
  matmulABt(dl, n, stride, rows, ws.pendKeysT, 0, C, dk, P, u, 0, dk, true);
  for (let r = 0; r < rows; r++) {
    let qu = 0;
    for (let d = 0; d < dk; d++) {
      qu += qHat[r * dk + d] * u[r * dk + d];
      u[r * dk + d] *= beta;
    }
    dbeta += qu;
    normalizeBackwardInto(qHat, u, r * dk, dk, b.qNorm[r], ws.config.normalize, dq, dqOff + r * dk);
  }
  // ∂L/∂μ = β(dℓᵀ q̂ − [gaussian] colSum·μ) for rows and pending keys.
  transpose(dl, 0, stride, rows, wide, wT, 0, rows);
  transpose(qHat, 0, dk, rows, dk, qT, 0, rows);
  matmulABt(wT, 0, rows, n, qT, 0, rows, dk, rows, b.rowGradK, 0, dk, false);
  matmulABt(wT, n * rows, rows, P, qT, 0, rows, dk, rows, pendGrad, 0, dk, false);
  for (let s = 0; s < P; s++) {
    const self = gaussian ? colSum[n + s] : 0;
    for (let d = 0; d < dk; d++) {
      b.dkHat[s * dk + d] += beta * (pendGrad[s * dk + d] - self * ws.pendKeys[s * dk + d]);
    }
  }
  // Fold into G: rows are sums (mean: ∂/∂S = ∂/∂μ / c) or themselves (ema).
  const { gk, gv, rowGradK, rowGradV } = b;
  for (let i = 0; i < n; i++) {
    const scale = mean ? 1 / ws.counts[i] : 1;
    const self = gaussian ? colSum[i] : 0;
    for (let d = 0; d < dk; d++) {
      gk[i * dk + d] += scale * beta * (rowGradK[i * dk + d] - self * ws.keys[i * dk + d]);
    }
    for (let d = 0; d < dv; d++) gv[i * dv + d] += scale * rowGradV[i * dv + d];
  }
  return dbeta;
}

/** TBPTT inputs and outputs of one head: ∂L/∂(final state) in, ∂L/∂(initial state) out. */
export type HeadStateGradients = {
  dFinal: CheckedStateGradient;
  /** Sized to the initial state's rows and pending count (the workspace as loaded). */
  dInitial: OvqStateGradient<Float32Array>;
};

/**
 * Gradients of one head (inputs at kOff/vOff, outputs into dq/dk/dv at the same offsets).
 * Returns ∂L/∂β; the tape receives the forward's absorb decisions. The workspace holds the
 * starting state (reset, or loaded from an initial state whose pending tokens sit in slots
 * 0…p0−1), so chunk a covers the tokens p0 + t ∈ [aC, (a+1)C).
 */
export function backwardHead(
  ws: HeadWorkspace,
  b: BackwardScratch,
  seq: { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number> },
  dOutput: ArrayLike<number>,
  kOff: number,
  vOff: number,
  T: number,
  grads: { dq: Float32Array; dk: Float32Array; dv: Float32Array },
  tape: AbsorbTape,
  stateGrads?: HeadStateGradients,
): number {
  const { keyDim: dk, valueDim: dv, chunkSize: C } = ws;
  const absorbs = tape.sizeBefore.length;
  const ema = ws.config.update.kind === 'ema';
  const p0 = ws.pendingCount;
  const n0 = ws.size;
  // Later chunks overwrite pending slots 0…p0−1: keep the initial pending tokens to re-stage.
  const initKeys = ws.pendKeys.slice(0, p0 * dk);
  const initValues = ws.pendValues.slice(0, p0 * dv);
  const first = (a: number) => (a === 0 ? p0 : 0);
  /** Stages chunk a's tokens of this call (and, for chunk 0, the initial pending ones). */
  const stageChunk = (
    a: number,
    s: ReadScratch | null,
    rows: number,
    kNorm: Float64Array | null,
  ) => {
    if (a === 0 && p0 > 0) {
      ws.pendKeys.set(initKeys);
      ws.pendValues.set(initValues);
      for (let j = 0; j < p0; j++) ws.refreshPending(j);
    }
    const slot = first(a);
    stageTokens(ws, s, seq.q, seq.k, seq.v, kOff, vOff, a * C + slot - p0, rows, slot, kNorm);
  };
  const every = Math.max(1, Math.ceil(Math.sqrt(absorbs)));
  const checkpoints: Checkpoint[] = [];
  // Forward sweep: decisions and final rows only (reads never change the state).
  for (let a = 0; a < absorbs; a++) {
    if (ema && a % every === 0) checkpoints.push(takeCheckpoint(ws));
    stageChunk(a, null, C - first(a), null);
    ws.pendingCount = C;
    ws.tokensSeen += C - first(a);
    tape.sizeBefore[a] = ws.size;
    ws.decideAbsorb(tape.codes, a * C);
    ws.applyAbsorb(tape.codes, a * C);
  }
  b.gk.fill(0);
  b.gv.fill(0);
  const dFinal = stateGrads?.dFinal;
  if (dFinal) {
    // G holds ∂L/∂(sums) for mean (μ = S/c) and ∂L/∂μ for ema.
    const mean = !ema;
    for (let i = 0; i < ws.size; i++) {
      const scale = mean ? 1 / ws.counts[i] : 1;
      if (dFinal.keys)
        for (let d = 0; d < dk; d++) b.gk[i * dk + d] = dFinal.keys[i * dk + d] * scale;
      if (dFinal.values) {
        for (let d = 0; d < dv; d++) b.gv[i * dv + d] = dFinal.values[i * dv + d] * scale;
      }
    }
  }
  let dbeta = 0;
  for (let a = Math.ceil((p0 + T) / C) - 1; a >= 0; a--) {
    const slot = first(a);
    const t0 = a * C + slot - p0;
    const rows = Math.min(C - slot, T - t0);
    if (a < absorbs) {
      absorbBackward(ws, b, tape, a);
      if (ema) {
        const base = Math.floor(a / every);
        restoreCheckpoint(ws, checkpoints[base]);
        for (let c = base * every; c < a; c++) {
          stageChunk(c, null, C - first(c), null);
          ws.applyAbsorb(tape.codes, c * C);
        }
      }
    } else {
      // The tokens still pending at the end: their gradient is the final state's.
      b.dkHat.fill(0);
      b.dvChunk.fill(0);
      if (dFinal?.pendingKeys)
        for (let i = 0; i < dFinal.pendingKeys.length; i++) b.dkHat[i] = dFinal.pendingKeys[i];
      if (dFinal?.pendingValues) {
        for (let i = 0; i < dFinal.pendingValues.length; i++)
          b.dvChunk[i] = dFinal.pendingValues[i];
      }
    }
    stageChunk(a, b, rows, b.kNorm);
    if (a < absorbs && !ema) ws.undoAbsorb(tape.codes, a * C, tape.sizeBefore[a]);
    if (rows > 0) {
      for (let r = 0; r < rows; r++) {
        for (let d = 0; d < dv; d++) b.gOut[r * dv + d] = dOutput[vOff + (t0 + r) * dv + d];
      }
      dbeta += readBackward(ws, b, rows, slot, grads.dq, kOff + t0 * dk);
    }
    for (let r = 0; r < rows; r++) {
      const s = slot + r;
      const at = kOff + (t0 + r) * dk;
      normalizeBackwardInto(
        ws.pendKeys,
        b.dkHat,
        s * dk,
        dk,
        b.kNorm[s],
        ws.config.normalize,
        grads.dk,
        at,
      );
      const vo = vOff + (t0 + r) * dv;
      for (let d = 0; d < dv; d++) grads.dv[vo + d] = b.dvChunk[s * dv + d];
    }
    if (a === 0 && stateGrads) {
      // Pending keys are stored normalised: their gradient is w.r.t. k̂ itself.
      stateGrads.dInitial.pendingKeys.set(b.dkHat.subarray(0, p0 * dk));
      stateGrads.dInitial.pendingValues.set(b.dvChunk.subarray(0, p0 * dv));
    }
  }
  if (stateGrads) {
    // The workspace is back at the initial rows and counts; ∂L/∂μ = c·∂L/∂S for mean.
    const { keys, values } = stateGrads.dInitial;
    for (let i = 0; i < n0; i++) {
      const scale = ema ? 1 : ws.counts[i];
      for (let d = 0; d < dk; d++) keys[i * dk + d] = b.gk[i * dk + d] * scale;
      for (let d = 0; d < dv; d++) values[i * dv + d] = b.gv[i * dv + d] * scale;
    }
  }
  return dbeta;
}

/**
 * Gradients of L = Σ dOutput ⊙ output + ⟨dFinalState, final state⟩ for
 * `ovqAttention(seq, config, { initialState })` (empty when not given) w.r.t. q, k, v, β and
 * the initial state's rows and pending tokens, by the reverse scan: O(T·N·d) time,
 * O(N·d + C·(N + C)) working memory plus the O(T) tape (and, for `update: ema`, ⌈√(T/C)⌉
 * float64 checkpoints of the dictionary).
 */
export function ovqAttentionBackward(
  seq: Seq,
  config: OvqConfig,
  dOutput: ArrayLike<number>,
  options: ChunkedBackwardOptions = {},
): ChunkedGradients {
  const resolved = resolveOvqConfig(config);
  const { seqLen: T, keyDim, valueDim } = validateSeq(seq);
  requireFiniteArray('dOutput', dOutput, T * valueDim, 'seqLen*valueDim');
  const init = resolveInitialState(options, resolved, keyDim, valueDim);
  refuseDataDependentShape(resolved, options.dFinalState);
  const dFinal = checkStateGradient(
    'options.dFinalState',
    options.dFinalState,
    finalShape(resolved, T, init, keyDim, valueDim),
  );
  const out = options.out ?? {};
  const grads = {
    dq:
      out.dq === undefined
        ? new Float32Array(T * keyDim)
        : checkOut(out.dq, T * keyDim, 'options.out.dq', 'seqLen*keyDim'),
    dk:
      out.dk === undefined
        ? new Float32Array(T * keyDim)
        : checkOut(out.dk, T * keyDim, 'options.out.dk', 'seqLen*keyDim'),
    dv:
      out.dv === undefined
        ? new Float32Array(T * valueDim)
        : checkOut(out.dv, T * valueDim, 'options.out.dv', 'seqLen*valueDim'),
  };
  const n0 = init ? init.size : 0;
  const p0 = init ? init.pendingCount : 0;
  const dInitialState: OvqStateGradient<Float32Array> = {
    keys: new Float32Array(n0 * keyDim),
    values: new Float32Array(n0 * valueDim),
    pendingKeys: new Float32Array(p0 * keyDim),
    pendingValues: new Float32Array(p0 * valueDim),
  };
  const C = resolved.chunkSize;
  const rowsCap = rowsNeeded(resolved, T, init);
  const ws = new HeadWorkspace(keyDim, valueDim, resolved, rowsCap);
  if (init) ws.load(init, resolved);
  else ws.reset(resolved);
  const scratch = new BackwardScratch(C, rowsCap, keyDim, valueDim);
  const tape = createTape(Math.floor((p0 + T) / C), C);
  const dbeta = backwardHead(ws, scratch, seq, dOutput, 0, 0, T, grads, tape, {
    dFinal,
    dInitial: dInitialState,
  });
  return { ...grads, dbeta, dInitialState, trace: traceFromTape(tape, C) };
}
