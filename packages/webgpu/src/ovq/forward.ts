// OVQ forward on the GPU: appends [BH, T] new tokens to a GpuOvqState chunk by chunk. Per chunk:
// one read dispatch, then (for a full chunk) nearest-row, spawn+assign, update and counts. Sizes
// are known on the host (the growth schedule depends only on token counts), so every dispatch is
// encoded up front; chunk ranges are submitted together with no host round trip.
import { randomSpawn, spawnCount } from '@ovq/core';
import { TILE_CAP, tileRows } from '../device/variants.js';
import type { GpuContext } from '../gpu/context.js';
import { WebGpuError } from '../gpu/errors.js';
import { ceilDiv, grid2d } from '../gpu/program.js';
import type { Recorder } from '../gpu/recorder.js';
import { type GpuTensor, TensorScope } from '../gpu/tensor.js';
import { checkTensor, requireNonNegativeInt } from '../gpu/validate.js';
import { OvqNearestProgram } from '../kernels/ovq-absorb/nearest.js';
import { OvqSpawnAssignProgram, traceLayout } from '../kernels/ovq-absorb/spawn.js';
import { OvqCountsProgram, OvqUpdateProgram } from '../kernels/ovq-absorb/update.js';
import { OvqCheckpointProgram } from '../kernels/ovq-backward/prep.js';
import { OvqReadProgram } from '../kernels/ovq-read/read.js';
import { CopyRowsProgram } from '../kernels/rows/rows.js';
import type { GpuOvqState } from './state.js';

/** Chunks encoded per submit: bounds command-buffer size without host round trips. */
export const CHUNKS_PER_SUBMIT = 32;

/** Host-side record of one absorb (the GPU holds the decisions in `trace`). */
export type AbsorbMeta = { chunkStart: number; sizeBefore: number; spawned: number; index: number };

/** What a forward leaves for the backward (all tensors owned by `scope`). */
export type ForwardRecord = {
  scope: TensorScope;
  /** Normalised queries [BH, T, dk]. */
  qh: GpuTensor;
  /** Working keys (normalised) and values [BH, L, d], L = P0 + T. */
  kw: GpuTensor;
  vw: GpuTensor;
  lse: GpuTensor;
  /** Decisions [BH, A, 6C + 1] (see traceLayout): rows, spawned tokens, per-row member lists. */
  trace: GpuTensor;
  absorbs: AbsorbMeta[];
  P0: number;
  L: number;
  sizeAfter: number;
  /**
   * With `keepCheckpoints`: the dictionary before absorbs 0, every, 2·every, … packed as
   * [slots, BH, N, dk + dv + 1] (key, value, count per row), every = ⌈√absorbs⌉.
   */
  checkpoints?: { every: number; tensor: GpuTensor };
};

export function ovqPrograms(ctx: GpuContext, state: GpuOvqState) {
  const wg = ctx.variant.workgroupSize;
  const { keyDim: dk, valueDim: dv } = state;
  const C = state.config.chunkSize;
  const padded = 4 * Math.ceil(dk / 4) + 4 * Math.ceil(dv / 4);
  return {
    wg,
    read: new OvqReadProgram(
      dk,
      dv,
      state.config.read,
      wg,
      tileRows(ctx.variant, padded + 2, TILE_CAP),
    ),
    nearest: new OvqNearestProgram(dk, wg, tileRows(ctx.variant, 4 * Math.ceil(dk / 4), TILE_CAP)),
    spawn: new OvqSpawnAssignProgram(dk, dv, C, wg, ctx.caps.subgroups),
    update: new OvqUpdateProgram(dk, dv, C, wg),
    counts: new OvqCountsProgram(C, wg),
    norm: new CopyRowsProgram(dk, state.config.normalize, wg),
    copyK: new CopyRowsProgram(dk, false, wg),
    copyV: new CopyRowsProgram(dv, false, wg),
  };
}

function checkChunkFits(ctx: GpuContext, C: number): void {
  // Spawn keeps seven C-long arrays plus two reduction arrays in workgroup memory.
  const need = 28 * C + 8 * ctx.variant.workgroupSize + 4;
  if (need > ctx.caps.maxWorkgroupStorage) {
    throw new WebGpuError(
      'config.chunkSize',
      `is ${C}; the spawn kernel needs ${need} bytes of workgroup storage but device.limits.maxComputeWorkgroupStorageSize is ${ctx.caps.maxWorkgroupStorage}`,
    );
  }
}

/**
 * GPU level: processes q, k, v [BH, T, d] after everything `state` has seen, writing `out`
 * [BH, T, dv]. Returns the record the backward needs; the caller disposes `record.scope`.
 */
export function ovqForwardGpu(
  state: GpuOvqState,
  input: { q: GpuTensor; k: GpuTensor; v: GpuTensor; seqLen: number },
  out: GpuTensor,
  options: { keepCheckpoints?: boolean } = {},
): ForwardRecord {
  state.assertAlive();
  const ctx = state.ctx;
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const T = requireNonNegativeInt('seqLen', input.seqLen);
  checkTensor('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim', state.ctx.device);
  checkTensor('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim', state.ctx.device);
  checkTensor('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim', state.ctx.device);
  checkTensor('out', out, [bh, T, dv], 'batchHeads*seqLen*valueDim', state.ctx.device);
  const cfg = state.config;
  const C = cfg.chunkSize;
  checkChunkFits(ctx, C);
  const P0 = state.pendingCount;
  const L = P0 + T;
  const fullChunks = Math.floor(L / C);

  // Host bookkeeping of sizes and spawn decisions that do not depend on data.
  const absorbs: AbsorbMeta[] = [];
  const hostPicks: number[][] = [];
  let size = state.size;
  let rng = state.rngState;
  for (let c = 0; c < fullChunks; c++) {
    const tau = state.tokensSeen - P0 + (c + 1) * C;
    const m = spawnCount(cfg.growth, cfg.capacity, tau, size, C);
    let picks: number[] = [];
    if (cfg.spawn === 'first') picks = Array.from({ length: m }, (_, j) => j);
    else if (cfg.spawn === 'random') {
      const r = randomSpawn(C, m, rng);
      picks = r.picks;
      rng = r.rngState;
    }
    absorbs.push({ chunkStart: c * C, sizeBefore: size, spawned: m, index: c });
    hostPicks.push(picks);
    size += m;
  }
  state.reserve(size);

  const scope = new TensorScope();
  try {
    return encodeForward(state, input, out, options, scope, { absorbs, hostPicks, rng, P0, L });
  } catch (error) {
    // Nothing this call made outlives it (work already submitted may still use the buffers).
    ctx.disposeWhenDone(scope);
    throw error;
  }
}

function encodeForward(
  state: GpuOvqState,
  input: { q: GpuTensor; k: GpuTensor; v: GpuTensor; seqLen: number },
  out: GpuTensor,
  options: { keepCheckpoints?: boolean },
  scope: TensorScope,
  host: { absorbs: AbsorbMeta[]; hostPicks: number[][]; rng: number; P0: number; L: number },
): ForwardRecord {
  const ctx = state.ctx;
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const { absorbs, hostPicks, rng, P0, L } = host;
  const T = input.seqLen;
  const cfg = state.config;
  const C = cfg.chunkSize;
  const chunks = ceilDiv(L, C);
  const fullChunks = Math.floor(L / C);
  const N = state.rowsAllocated;
  const A = Math.max(1, fullChunks);
  const p = ovqPrograms(ctx, state);
  const wg = p.wg;
  const qh = scope.track(ctx.tensor([bh, T, dk], 'f32', 'qHat'));
  const kw = scope.track(ctx.tensor([bh, L, dk], 'f32', 'workingKeys'));
  const vw = scope.track(ctx.tensor([bh, L, dv], 'f32', 'workingValues'));
  const lse = scope.track(ctx.tensor([bh, T], 'f32', 'lse'));
  const trace = scope.track(ctx.tensor([bh, A, traceLayout(C).stride], 'i32', 'trace'));
  const nearest = scope.track(ctx.tensor([bh, 2 * C], 'f32', 'nearest'));
  const picks = new Int32Array(A * C);
  hostPicks.forEach((list, a) => {
    picks.set(list, a * C);
  });
  const picksT = scope.track(ctx.upload(picks, [A, C], 'i32', 'picks'));
  let checkpoints: ForwardRecord['checkpoints'];
  const saveCheckpoint = options.keepCheckpoints
    ? new OvqCheckpointProgram(dk, dv, p.wg)
    : undefined;
  if (saveCheckpoint) {
    const every = Math.max(1, Math.ceil(Math.sqrt(fullChunks)));
    const slots = Math.max(1, Math.ceil(fullChunks / every));
    const tensor = scope.track(
      ctx.tensor([slots, bh, N, dk + dv + 1], 'f32', 'dictionaryCheckpoints'),
    );
    checkpoints = { every, tensor };
  }

  let rec: Recorder = ctx.recorder();
  const rows = (n: number) => [ceilDiv(n, wg), bh] as [number, number];
  const copy = (
    prog: CopyRowsProgram,
    src: GpuTensor,
    dst: GpuTensor,
    n: number,
    sR: number,
    sO: number,
    dR: number,
    dO: number,
  ) =>
    rec.dispatch(
      prog,
      [src, dst],
      { rows: n, srcRowsPerHead: sR, srcOffset: sO, dstRowsPerHead: dR, dstOffset: dO },
      rows(n),
    );
  // Working buffers: old pending tokens first, then this call's (keys normalised).
  copy(p.copyK, state.pendingKeys, kw, P0, C, 0, L, 0);
  copy(p.copyV, state.pendingValues, vw, P0, C, 0, L, 0);
  copy(p.norm, input.k, kw, T, T, 0, L, P0);
  copy(p.copyV, input.v, vw, T, T, 0, L, P0);
  copy(p.norm, input.q, qh, T, T, 0, T, 0);

  let n = state.size;
  for (let c = 0; c < chunks; c++) {
    const cs = c * C;
    const ce = Math.min(cs + C, L);
    const qs = Math.max(cs, P0);
    if (ce > qs) {
      rec.dispatch(
        p.read,
        [qh, kw, vw, state.keys, state.values, state.counts, out, lse],
        { L, T, P0, cs, qs, qe: ce, n, N, beta: cfg.beta },
        [ceilDiv(ce - qs, wg), bh],
      );
    }
    if (c < fullChunks) {
      const meta = absorbs[c];
      const m = meta.spawned;
      const a = c;
      if (saveCheckpoint && checkpoints && a % checkpoints.every === 0 && n > 0) {
        rec.dispatch(
          saveCheckpoint,
          [state.keys, state.values, state.counts, checkpoints.tensor],
          { rows: n, N, slot: a / checkpoints.every, heads: bh },
          grid2d(n * (dk + dv + 1), wg, bh, ctx.caps.maxWorkgroupsPerDimension),
        );
      }
      rec.dispatch(p.nearest, [kw, state.keys, nearest], { L, cs, C, n, N }, [ceilDiv(C, wg), bh]);
      rec.dispatch(
        p.spawn,
        [kw, vw, nearest, picksT, state.keys, state.values, state.counts, trace],
        { L, cs, n, m, a, A, N, farthest: cfg.spawn === 'farthest' ? 1 : 0 },
        [bh],
      );
      const ema = cfg.update.kind === 'ema';
      rec.dispatch(
        p.update,
        [kw, vw, trace, state.counts, state.keys, state.values],
        {
          L,
          cs,
          n,
          rows: n + m,
          a,
          A,
          N,
          ema: ema ? 1 : 0,
          rate: ema ? (cfg.update as { rate: number }).rate : 0,
        },
        // One thread per (touched row, element): at most C rows are touched per absorb.
        [ceilDiv(Math.min(C, n + m) * (dk + dv), wg), bh],
      );
      rec.dispatch(
        p.counts,
        [trace, state.counts],
        { n, rows: n + m, a, A, N, withSeeds: 0, sign: 1 },
        rows(Math.min(C, n + m)),
      );
      n += m;
    }
    if ((c + 1) % CHUNKS_PER_SUBMIT === 0) {
      rec.submit();
      rec = ctx.recorder();
    }
  }
  // The tail (an incomplete chunk) becomes the new pending buffer.
  const tail = L - fullChunks * C;
  copy(p.copyK, kw, state.pendingKeys, tail, L, fullChunks * C, C, 0);
  copy(p.copyV, vw, state.pendingValues, tail, L, fullChunks * C, C, 0);
  rec.submit();

  state.size = n;
  state.tokensSeen += T;
  state.pendingCount = tail;
  state.rngState = rng;
  return { scope, qh, kw, vw, lse, trace, absorbs, P0, L, sizeAfter: n, checkpoints };
}

/**
 * GPU level, a benchmark aid: encodes only the read dispatches of the forward that produced
 * `record` (the same chunk ranges and per-chunk dictionary sizes, so the same work and FLOPs as
 * that forward's reads) into one command buffer, with no absorb. The rows read are `state`'s
 * current ones (e.g. the dictionary the forward left), so `out` and `record.lse` are overwritten
 * with values that differ from the forward's. `record.scope` must not have been disposed.
 */
export function ovqReadPassGpu(state: GpuOvqState, record: ForwardRecord, out: GpuTensor): void {
  state.assertAlive();
  const ctx = state.ctx;
  const { batchHeads: bh, valueDim: dv } = state;
  const { L, P0, absorbs } = record;
  const T = L - P0;
  checkTensor('out', out, [bh, T, dv], 'batchHeads*seqLen*valueDim', state.ctx.device);
  if (record.sizeAfter > state.size) {
    throw new WebGpuError(
      'state',
      `has ${state.size} rows; the record's forward ended with ${record.sizeAfter}`,
    );
  }
  const cfg = state.config;
  const C = cfg.chunkSize;
  const p = ovqPrograms(ctx, state);
  const rec = ctx.recorder();
  for (let c = 0; c < ceilDiv(L, C); c++) {
    const cs = c * C;
    const ce = Math.min(cs + C, L);
    const qs = Math.max(cs, P0);
    if (ce <= qs) continue;
    const n = c < absorbs.length ? absorbs[c].sizeBefore : record.sizeAfter;
    rec.dispatch(
      p.read,
      [record.qh, record.kw, record.vw, state.keys, state.values, state.counts, out, record.lse],
      { L, T, P0, cs, qs, qe: ce, n, N: state.rowsAllocated, beta: cfg.beta },
      [ceilDiv(ce - qs, p.wg), bh],
    );
  }
  rec.submit();
}
