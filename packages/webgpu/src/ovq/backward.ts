// OVQ backward on the GPU (ALGORITHM.md §5): from the forward's log-sum-exps and absorb
// decisions (kept by a forward run here, `ovqBackwardGpu`, or saved by the caller's own forward,
// `ovqBackwardFromSavedGpu`), chunks are walked in reverse carrying
// G[i] = Σ_later ∂L/∂row_i / count_i. ⌈√absorbs⌉ checkpoints of the dictionary (kept by the
// forward, or rebuilt here by replaying the saved decisions from the empty dictionary: no read, no
// nearest-row search) and, per stretch of absorbs between two checkpoints, the dictionary before
// each of them (replayed once from the checkpoint) give every chunk start with the forward's own
// update formula, so the backward sees the forward's dictionary bit for bit (an undo of the
// means, S = count·row then S −= members, lost ~count·2⁻²⁴ per row: 1.8e-3 at count 4k). For `update: ema` G carries ∂L/∂row itself, and at an absorb each of a row's m
// members receives η/m of it while the row keeps (1−η) (a spawned row passes its G to its seed).

import { TILE_CAP, tileRows } from '../device/variants.js';
import type { GpuContext } from '../gpu/context.js';
import { WebGpuError } from '../gpu/errors.js';
import { ceilDiv, grid2d } from '../gpu/program.js';
import type { Recorder } from '../gpu/recorder.js';
import { type GpuTensor, TensorScope } from '../gpu/tensor.js';
import { checkTensor, requireNonNegativeInt } from '../gpu/validate.js';
import { OvqGradOutProgram } from '../kernels/ovq/backward/grad-out.js';
import { OvqPackDictionaryProgram } from '../kernels/ovq/backward/pack.js';
import { OvqColumnGradProgram, OvqQueryGradProgram } from '../kernels/ovq/backward/read-grad.js';
import { OvqReplayEmaProgram, OvqReplayMeanProgram } from '../kernels/ovq/backward/replay.js';
import { OvqEmaScatterProgram, OvqScatterGradProgram } from '../kernels/ovq/backward/scatter.js';
import { OvqStatsProgram, OvqSumBetaProgram } from '../kernels/ovq/backward/stats.js';
import { CopyRowsProgram, NormalizeBackwardProgram } from '../kernels/rows/rows.js';
import {
  type AbsorbMeta,
  CHUNKS_PER_SUBMIT,
  ovqForwardGpu,
  ovqSavedShapes,
  planAbsorbs,
} from './forward.js';
import { checkSavedForward } from './saved.js';
import type { GpuOvqState } from './state.js';

export type OvqGradTensors = { dq: GpuTensor; dk: GpuTensor; dv: GpuTensor; dbeta: GpuTensor };

/**
 * What a forward from an empty state leaves for `ovqBackwardFromSavedGpu`: its output [BH, T, dv]
 * and, written through `ovqForwardGpu`'s `save` option, the per-query log-sum-exps [BH, T] (f32)
 * and the absorb decisions [BH, A, 6C + 1] (i32; shapes from `ovqSavedShapes`).
 */
export type OvqSavedForward = { output: GpuTensor; lse: GpuTensor; trace: GpuTensor };

/** What the reverse walk reads of the forward (its record, or the saved tensors). */
type BackwardSource = {
  qh: GpuTensor;
  kw: GpuTensor;
  vw: GpuTensor;
  lse: GpuTensor;
  trace: GpuTensor;
  absorbs: AbsorbMeta[];
  L: number;
  sizeAfter: number;
  /** Kept by the forward; absent: rebuilt by replaying the decisions from the empty dictionary. */
  checkpoints?: { every: number; tensor: GpuTensor };
  /** Rows per head of the packed dictionaries (≥ sizeAfter). */
  N: number;
};

/**
 * Bytes the dictionaries kept for one stretch of absorbs may take (fewer are kept, and replayed
 * more often, when they do not fit). Not exported from the package; tests lower it.
 */
export const backwardLimits = { stretchBytes: 256 * 1024 * 1024 };

function twoD(rows: number, wg: number): [number, number] {
  const groups = ceilDiv(rows, wg);
  return [Math.min(groups, 65535), ceilDiv(groups, 65535)];
}

function requireEmpty(state: GpuOvqState): void {
  state.assertAlive();
  if (state.tokensSeen !== 0 || state.size !== 0) {
    throw new WebGpuError(
      'state',
      `has seen ${state.tokensSeen} tokens; the backward starts from an empty state`,
    );
  }
}

function checkGrads(state: GpuOvqState, T: number, dout: GpuTensor, grads: OvqGradTensors): void {
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const device = state.ctx.device;
  checkTensor('dout', dout, [bh, T, dv], 'batchHeads*seqLen*valueDim', device);
  checkTensor('dq', grads.dq, [bh, T, dk], 'batchHeads*seqLen*keyDim', device);
  checkTensor('dk', grads.dk, [bh, T, dk], 'batchHeads*seqLen*keyDim', device);
  checkTensor('dv', grads.dv, [bh, T, dv], 'batchHeads*seqLen*valueDim', device);
  checkTensor('dbeta', grads.dbeta, [bh], 'batchHeads', device);
}

/**
 * GPU level: gradients of ⟨dout, output⟩ for a sequence processed from the empty `state` (which
 * ends holding the final dictionary). Writes dq, dk [BH,T,dk], dv [BH,T,dv] and per-head dβ [BH].
 * Also writes the forward output to `out`: this runs the forward first. A caller that already ran
 * the forward (a training framework's forward pass) saves its log-sum-exps and decisions and calls
 * `ovqBackwardFromSavedGpu` instead.
 */
export function ovqBackwardGpu(
  state: GpuOvqState,
  input: { q: GpuTensor; k: GpuTensor; v: GpuTensor; seqLen: number },
  dout: GpuTensor,
  out: GpuTensor,
  grads: OvqGradTensors,
): void {
  requireEmpty(state);
  const ctx: GpuContext = state.ctx;
  checkGrads(state, input.seqLen, dout, grads);
  const fwd = ovqForwardGpu(state, input, out, { keepCheckpoints: true });
  const scope = new TensorScope();
  try {
    const source = { ...fwd, N: state.rowsAllocated };
    encodeBackward(ctx, state, source, scope, input, dout, out, grads);
  } finally {
    ctx.disposeWhenDone(scope);
    ctx.disposeWhenDone(fwd.scope);
  }
}

/**
 * GPU level: the same gradients as `ovqBackwardGpu` without running the forward again, from what
 * a forward of the same q, k, v from an empty state of the same dims and config saved (`saved`:
 * its output, and its log-sum-exps and decisions written through `ovqForwardGpu`'s `save`
 * option). The dictionary checkpoints are rebuilt by replaying the saved decisions (one small
 * dispatch per absorb: no read, no nearest-row search).
 * `state` (empty, same dims and config) only supplies them; it stays empty.
 */
export function ovqBackwardFromSavedGpu(
  state: GpuOvqState,
  input: { q: GpuTensor; k: GpuTensor; v: GpuTensor; seqLen: number },
  saved: OvqSavedForward,
  dout: GpuTensor,
  grads: OvqGradTensors,
): void {
  requireEmpty(state);
  const ctx: GpuContext = state.ctx;
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const T = requireNonNegativeInt('seqLen', input.seqLen);
  const device = ctx.device;
  checkTensor('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim', device);
  checkTensor('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim', device);
  checkTensor('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim', device);
  checkGrads(state, T, dout, grads);
  if (!saved || typeof saved !== 'object') {
    throw new WebGpuError('saved', `got ${String(saved)}; expected { output, lse, trace }`);
  }
  const shapes = ovqSavedShapes(state, T, state.config.chunkSize);
  checkTensor('saved.output', saved.output, [bh, T, dv], 'batchHeads*seqLen*valueDim', device);
  checkTensor('saved.lse', saved.lse, shapes.lse, 'batchHeads*seqLen', device);
  const traceName = 'batchHeads*absorbs*(6*chunkSize+1) (ovqSavedShapes)';
  checkTensor('saved.trace', saved.trace, shapes.trace, traceName, device, 'i32');
  checkSavedForward(state, input, saved);
  const plan = planAbsorbs(state, T);
  const scope = new TensorScope();
  try {
    // The forward's working queries and keys: normalised copies, or q and k themselves.
    let qh = input.q;
    let kw = input.k;
    if (state.config.normalize) {
      const norm = new CopyRowsProgram(dk, true, ctx.variant.workgroupSize);
      qh = scope.track(ctx.tensor([bh, T, dk], 'f32', 'qHat'));
      kw = scope.track(ctx.tensor([bh, T, dk], 'f32', 'workingKeys'));
      const rec = ctx.recorder();
      const at = { rows: T, srcRowsPerHead: T, srcOffset: 0, dstRowsPerHead: T, dstOffset: 0 };
      const groups: [number, number] = [ceilDiv(T, ctx.variant.workgroupSize), bh];
      rec.dispatch(norm, [input.q, qh], at, groups);
      rec.dispatch(norm, [input.k, kw], at, groups);
      rec.submit();
    }
    const source: BackwardSource = {
      qh,
      kw,
      vw: input.v,
      lse: saved.lse,
      trace: saved.trace,
      absorbs: plan.absorbs,
      L: T,
      sizeAfter: plan.sizeAfter,
      N: Math.max(1, plan.sizeAfter),
    };
    encodeBackward(ctx, state, source, scope, input, dout, saved.output, grads);
  } finally {
    ctx.disposeWhenDone(scope);
  }
}

function encodeBackward(
  ctx: GpuContext,
  state: GpuOvqState,
  fwd: BackwardSource,
  scope: TensorScope,
  input: { q: GpuTensor; k: GpuTensor },
  dout: GpuTensor,
  out: GpuTensor,
  grads: OvqGradTensors,
): void {
  const cfg = state.config;
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const C = cfg.chunkSize;
  const { L, absorbs, N } = fwd;
  const rate = cfg.update.kind === 'ema' ? cfg.update.rate : null;
  const T = L;
  const A = Math.max(1, absorbs.length);
  const wg = ctx.variant.workgroupSize;
  const E = dk + dv;
  const padded = 4 * Math.ceil(dk / 4) + 4 * Math.ceil(dv / 4);
  const tile = tileRows(ctx.variant, padded + 2, TILE_CAP);
  const prog = {
    pack: new OvqPackDictionaryProgram(dk, dv, wg),
    stats: new OvqStatsProgram(dv, wg),
    scatter: new OvqScatterGradProgram(dk, dv, C, wg),
    query: new OvqQueryGradProgram(dk, dv, cfg.read, wg, tile),
    column: new OvqColumnGradProgram(dk, dv, cfg.read, wg, tile, rate !== null),
    emaScatter: new OvqEmaScatterProgram(dk, dv, C, wg),
    replayEma: new OvqReplayEmaProgram(dk, dv, C, wg),
    replayMean: new OvqReplayMeanProgram(dk, dv, C, wg),
    sumBeta: new OvqSumBetaProgram(),
    gradOut: new OvqGradOutProgram(dk, dv, cfg.normalize, wg),
    normQ: new NormalizeBackwardProgram(dk, wg),
  };
  const slotSize = bh * N * (E + 1);
  const BD = scope.track(ctx.tensor([bh, N, E + 1], 'f32', 'backwardDictionary'));
  const G = scope.track(ctx.tensor([bh, N, E], 'f32', 'carriedGrad'));
  const dKV = scope.track(ctx.tensor([bh, L, E], 'f32', 'dKV'));
  const dqh = scope.track(ctx.tensor([bh, T, dk], 'f32', 'dqHat'));
  const stats = scope.track(ctx.tensor([bh, T, 4], 'f32', 'stats'));

  let rec: Recorder = ctx.recorder();
  const every = fwd.checkpoints?.every ?? Math.max(1, Math.ceil(Math.sqrt(absorbs.length)));
  /** Replays absorb r on BD (the dictionary before it becomes the one after it). */
  const replay = (r: number) => {
    const m = absorbs[r];
    const replayed = Math.min(C, m.sizeBefore + m.spawned);
    const at = { L, cs: r * C, n: m.sizeBefore, a: r, A, N };
    const groups = [ceilDiv(replayed * (E + 1), wg), bh] as [number, number];
    const inputs = [fwd.kw, fwd.vw, fwd.trace, BD];
    if (rate !== null) rec.dispatch(prog.replayEma, inputs, { ...at, rate }, groups);
    else rec.dispatch(prog.replayMean, inputs, at, [replayed, bh]);
  };
  let checkpoints: GpuTensor;
  if (fwd.checkpoints) {
    checkpoints = fwd.checkpoints.tensor;
    rec.dispatch(
      prog.pack,
      [state.keys, state.values, state.counts, BD],
      { rows: fwd.sizeAfter, N },
      grid2d(fwd.sizeAfter * (E + 1), wg, bh, ctx.caps.maxWorkgroupsPerDimension),
    );
  } else {
    // Rebuilt from the decisions: BD starts as the empty dictionary (zeros) and ends as the
    // final one, which the last (incomplete) chunk reads.
    const slots = Math.max(1, Math.ceil(absorbs.length / every));
    checkpoints = scope.track(ctx.tensor([slots, bh, N, E + 1], 'f32', 'dictionaryCheckpoints'));
    for (let a = 0; a < absorbs.length; a++) {
      if (a % every === 0 && a > 0) rec.copy(BD, 0, checkpoints, (a / every) * slotSize, slotSize);
      replay(a);
      if ((a + 1) % CHUNKS_PER_SUBMIT === 0) {
        rec.submit();
        rec = ctx.recorder();
      }
    }
  }
  // The dictionaries before the absorbs of the stretch being walked, replayed once from its
  // checkpoint: `stretch` of them (all `every` when they fit the budget; with fewer, the
  // stretch's first absorbs are replayed once per group of `stretch` chunks).
  const stretch = Math.max(
    1,
    Math.min(every, Math.floor(backwardLimits.stretchBytes / (4 * slotSize))),
  );
  const kept =
    stretch > 1
      ? scope.track(ctx.tensor([stretch - 1, bh, N, E + 1], 'f32', 'stretchDictionaries'))
      : null;
  let keptFrom = -1;
  let n = fwd.sizeAfter;
  rec.dispatch(prog.stats, [fwd.lse, out, dout, stats], { rows: bh * T }, twoD(bh * T, wg));
  const chunks = ceilDiv(L, C);
  for (let c = chunks - 1; c >= 0; c--) {
    const cs = c * C;
    const ce = Math.min(cs + C, L);
    if (c < absorbs.length) {
      const meta = absorbs[c];
      const rows = meta.sizeBefore + meta.spawned;
      // Move G through the absorb (EMA: a row keeps (1−η), members get η/m; mean: members
      // receive G[row]), then set BD to the dictionary before it.
      if (rate !== null) {
        const groups = Math.min(C, rows);
        const ema = { L, cs, n: meta.sizeBefore, a: c, A, N, rate };
        rec.dispatch(prog.emaScatter, [fwd.trace, G, dKV], ema, [ceilDiv(groups * E, wg), bh]);
      } else {
        rec.dispatch(prog.scatter, [fwd.trace, G, dKV], { L, cs, a: c, A, N }, [
          ceilDiv(C * E, wg),
          bh,
        ]);
      }
      if (kept && keptFrom >= 0 && c >= keptFrom) {
        rec.copy(kept, (c - keptFrom) * slotSize, BD, 0, slotSize);
      } else {
        // From the checkpoint up to absorb c, keeping the last stretch − 1 dictionaries passed.
        const slot = Math.floor(c / every);
        const from = Math.max(slot * every, c - stretch + 1);
        rec.copy(checkpoints, slot * slotSize, BD, 0, slotSize);
        for (let r = slot * every; r < c; r++) {
          if (kept && r >= from) rec.copy(BD, 0, kept, (r - from) * slotSize, slotSize);
          replay(r);
        }
        keptFrom = from;
      }
      n = meta.sizeBefore;
    }
    const params = { L, T, cs, qs: cs, qe: ce, n, N, beta: cfg.beta };
    rec.dispatch(prog.query, [fwd.qh, fwd.kw, fwd.vw, BD, dout, stats, dqh], params, [
      ceilDiv(ce - cs, wg),
      bh,
    ]);
    rec.dispatch(prog.column, [fwd.qh, fwd.kw, fwd.vw, BD, dout, stats, G, dKV], params, [
      ceilDiv(n + ce - cs, wg),
      bh,
    ]);
    if (c % CHUNKS_PER_SUBMIT === 0) {
      rec.submit();
      rec = ctx.recorder();
    }
  }
  rec.dispatch(prog.sumBeta, [stats, grads.dbeta], { T, heads: bh }, [bh]);
  rec.dispatch(
    prog.gradOut,
    [input.k, dKV, grads.dk, grads.dv],
    { rows: bh * T },
    twoD(bh * T, wg),
  );
  if (cfg.normalize)
    rec.dispatch(prog.normQ, [input.q, dqh, grads.dq], { rows: bh * T }, twoD(bh * T, wg));
  else rec.copy(dqh, 0, grads.dq, 0, bh * T * dk);
  rec.submit();
}
