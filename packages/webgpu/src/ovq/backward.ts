// OVQ backward on the GPU (ALGORITHM.md §5): the forward is re-run (keeping its working buffers,
// the log-sum-exps and the absorb decisions), then chunks are walked in reverse carrying
// G[i] = Σ_later ∂L/∂row_i / count_i. The forward keeps ⌈√absorbs⌉ checkpoints of the dictionary
// and each chunk start is recomputed from the nearest earlier one by replaying the recorded
// decisions with the forward's own update formula, so the backward sees the forward's dictionary
// (an undo of the means, S = count·row then S −= members, lost ~count·2⁻²⁴ per row: 1.8e-3 at
// count 4k). For `update: ema` G carries ∂L/∂row itself, and at an absorb each of a row's m
// members receives η/m of it while the row keeps (1−η) (a spawned row passes its G to its seed).

import { TILE_CAP, tileRows } from '../device/variants.js';
import type { GpuContext } from '../gpu/context.js';
import { WebGpuError } from '../gpu/errors.js';
import { ceilDiv, grid2d } from '../gpu/program.js';
import type { Recorder } from '../gpu/recorder.js';
import { type GpuTensor, TensorScope } from '../gpu/tensor.js';
import { checkTensor } from '../gpu/validate.js';
import { OvqGradOutProgram } from '../kernels/ovq/backward/grad-out.js';
import { OvqPackDictionaryProgram } from '../kernels/ovq/backward/pack.js';
import { OvqColumnGradProgram, OvqQueryGradProgram } from '../kernels/ovq/backward/read-grad.js';
import { OvqReplayAbsorbProgram } from '../kernels/ovq/backward/replay.js';
import { OvqEmaScatterProgram, OvqScatterGradProgram } from '../kernels/ovq/backward/scatter.js';
import { OvqStatsProgram, OvqSumBetaProgram } from '../kernels/ovq/backward/stats.js';
import { NormalizeBackwardProgram } from '../kernels/rows/rows.js';
import { CHUNKS_PER_SUBMIT, type ForwardRecord, ovqForwardGpu } from './forward.js';
import type { GpuOvqState } from './state.js';

export type OvqGradTensors = { dq: GpuTensor; dk: GpuTensor; dv: GpuTensor; dbeta: GpuTensor };

function twoD(rows: number, wg: number): [number, number] {
  const groups = ceilDiv(rows, wg);
  return [Math.min(groups, 65535), ceilDiv(groups, 65535)];
}

/**
 * GPU level: gradients of ⟨dout, output⟩ for a sequence processed from the empty `state` (which
 * ends holding the final dictionary). Writes dq, dk [BH,T,dk], dv [BH,T,dv] and per-head dβ [BH].
 * Also writes the forward output to `out`.
 */
export function ovqBackwardGpu(
  state: GpuOvqState,
  input: { q: GpuTensor; k: GpuTensor; v: GpuTensor; seqLen: number },
  dout: GpuTensor,
  out: GpuTensor,
  grads: OvqGradTensors,
): void {
  state.assertAlive();
  if (state.tokensSeen !== 0 || state.size !== 0) {
    throw new WebGpuError(
      'state',
      `has seen ${state.tokensSeen} tokens; the backward starts from an empty state`,
    );
  }
  const ctx: GpuContext = state.ctx;
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const T = input.seqLen;
  checkTensor('dout', dout, [bh, T, dv], 'batchHeads*seqLen*valueDim', state.ctx.device);
  checkTensor('dq', grads.dq, [bh, T, dk], 'batchHeads*seqLen*keyDim', state.ctx.device);
  checkTensor('dk', grads.dk, [bh, T, dk], 'batchHeads*seqLen*keyDim', state.ctx.device);
  checkTensor('dv', grads.dv, [bh, T, dv], 'batchHeads*seqLen*valueDim', state.ctx.device);
  checkTensor('dbeta', grads.dbeta, [bh], 'batchHeads', state.ctx.device);
  const fwd: ForwardRecord = ovqForwardGpu(state, input, out, { keepCheckpoints: true });
  const scope = new TensorScope();
  try {
    encodeBackward(ctx, state, fwd, scope, input, dout, out, grads);
  } finally {
    ctx.disposeWhenDone(scope);
    ctx.disposeWhenDone(fwd.scope);
  }
}

function encodeBackward(
  ctx: GpuContext,
  state: GpuOvqState,
  fwd: ForwardRecord,
  scope: TensorScope,
  input: { q: GpuTensor; k: GpuTensor },
  dout: GpuTensor,
  out: GpuTensor,
  grads: OvqGradTensors,
): void {
  const cfg = state.config;
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const C = cfg.chunkSize;
  const { L, absorbs } = fwd;
  const checkpoints = fwd.checkpoints;
  if (!checkpoints) throw new Error('internal: the backward needs the forward checkpoints');
  const rate = cfg.update.kind === 'ema' ? cfg.update.rate : null;
  const T = L;
  const N = state.rowsAllocated;
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
    replay: new OvqReplayAbsorbProgram(dk, dv, C, wg),
    sumBeta: new OvqSumBetaProgram(),
    gradOut: new OvqGradOutProgram(dk, dv, cfg.normalize, wg),
    normQ: new NormalizeBackwardProgram(dk, wg),
  };
  const BD = scope.track(ctx.tensor([bh, N, E + 1], 'f32', 'backwardDictionary'));
  const G = scope.track(ctx.tensor([bh, N, E], 'f32', 'carriedGrad'));
  const dKV = scope.track(ctx.tensor([bh, L, E], 'f32', 'dKV'));
  const dqh = scope.track(ctx.tensor([bh, T, dk], 'f32', 'dqHat'));
  const stats = scope.track(ctx.tensor([bh, T, 4], 'f32', 'stats'));

  let rec: Recorder = ctx.recorder();
  let n = fwd.sizeAfter;
  rec.dispatch(
    prog.pack,
    [state.keys, state.values, state.counts, BD],
    { rows: n, N },
    grid2d(n * (E + 1), wg, bh, ctx.caps.maxWorkgroupsPerDimension),
  );
  rec.dispatch(prog.stats, [fwd.lse, out, dout, stats], { rows: bh * T }, twoD(bh * T, wg));
  const chunks = ceilDiv(L, C);
  for (let c = chunks - 1; c >= 0; c--) {
    const cs = c * C;
    const ce = Math.min(cs + C, L);
    if (c < absorbs.length) {
      const meta = absorbs[c];
      const rows = meta.sizeBefore + meta.spawned;
      // Move G through the absorb (EMA: a row keeps (1−η), members get η/m; mean: members
      // receive G[row]), then rebuild the dictionary before it from the nearest checkpoint.
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
      const { every, tensor } = checkpoints;
      const slot = Math.floor(c / every);
      const slotSize = bh * N * (E + 1);
      rec.copy(tensor, slot * slotSize, BD, 0, slotSize);
      for (let r = slot * every; r < c; r++) {
        const m = absorbs[r];
        const replayed = Math.min(C, m.sizeBefore + m.spawned);
        const at = { L, cs: r * C, n: m.sizeBefore, a: r, A, N, rate: rate ?? 0 };
        const groups = [ceilDiv(replayed * (E + 1), wg), bh] as [number, number];
        const inputs = [fwd.kw, fwd.vw, fwd.trace, BD];
        if (rate !== null) rec.dispatch(prog.replay, inputs, { ...at, mode: 0 }, groups);
        else {
          rec.dispatch(prog.replay, inputs, { ...at, mode: 1 }, groups);
          rec.dispatch(prog.replay, inputs, { ...at, mode: 2 }, groups);
        }
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
