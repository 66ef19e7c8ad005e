// OVQ forward on the GPU: appends [BH, T] new tokens to a GpuOvqState chunk by chunk. Per full
// chunk two dispatches: the read (flash-style, fused with the absorb's nearest-row search) and the
// absorb (spawn, assign, M-step, counts); the read partials of a batch of chunks are merged into the
// output by one combine dispatch per batch. Sizes are known on the host (the growth schedule
// depends only on token counts), so every dispatch is encoded up front; chunk ranges are submitted
// together with no host round trip.
import { randomSpawn, spawnCount } from '@ovq/core';
import type { GpuContext } from '../gpu/context.js';
import { WebGpuError } from '../gpu/errors.js';
import { ceilDiv, grid2d } from '../gpu/program.js';
import type { Recorder } from '../gpu/recorder.js';
import { type GpuTensor, TensorScope } from '../gpu/tensor.js';
import {
  checkDims,
  checkTensor,
  requireNonNegativeInt,
  requirePositiveInt,
} from '../gpu/validate.js';
import { OvqSpawnAssignProgram, traceLayout } from '../kernels/ovq/absorb/spawn.js';
import { OvqCheckpointProgram } from '../kernels/ovq/backward/pack.js';
import { OvqReadCombineProgram, OvqReadProgram, partialLayout } from '../kernels/ovq/read/read.js';
import { readTiling } from '../kernels/ovq/read/tiling.js';
import { CopyRowsProgram } from '../kernels/rows/rows.js';
import { stampSavedForward } from './saved.js';
import type { GpuOvqState } from './state.js';

/** Chunks encoded per submit: bounds command-buffer size without host round trips. */
export const CHUNKS_PER_SUBMIT = 32;

/** Host-side record of one absorb (the GPU holds the decisions in `trace`). */
export type AbsorbMeta = { chunkStart: number; sizeBefore: number; spawned: number; index: number };

/**
 * What a forward leaves for the backward (tensors owned by `scope`, except the caller's: q, k, v
 * when they serve as the working buffers, and the `save` tensors).
 */
export type ForwardRecord = {
  scope: TensorScope;
  /** Normalised queries [BH, T, dk]. */
  qh: GpuTensor;
  /** Working keys (normalised) and values [BH, L, d], L = P0 + T. */
  kw: GpuTensor;
  vw: GpuTensor;
  /** Per-query log-sum-exps of the read [BH, T]. */
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
  /** What the call dispatched (counted by the recorder), for benchmarks and tests. */
  dispatches: ForwardDispatches;
};

/**
 * Dispatch counts of one forward call. `perChunk` = `inChunks / chunks`: the chunk loop's reads,
 * absorbs, read combines (one per batch of chunks) and checkpoints; `perCall` are the copies into
 * and out of the working buffers (at most 7, independent of T). `bindGroups` were created by the
 * call's submits (one per program and buffer set per submit, reused through dynamic offsets).
 */
export type ForwardDispatches = {
  chunks: number;
  inChunks: number;
  perChunk: number;
  perCall: number;
  total: number;
  bindGroups: number;
  submits: number;
};

/** Bytes the read partials of one batch of chunks may take (the batch shrinks to fit). */
const PARTIAL_BUDGET = 64 * 1024 * 1024;

export function ovqPrograms(ctx: GpuContext, state: GpuOvqState) {
  const wg = ctx.variant.workgroupSize;
  const { keyDim: dk, valueDim: dv } = state;
  const C = state.config.chunkSize;
  const tiling = readTiling(ctx.caps, ctx.variant, dk, dv);
  return {
    wg,
    tiling,
    read: new OvqReadProgram(dk, dv, C, state.config.read, tiling),
    combine: new OvqReadCombineProgram(dv, C, wg),
    spawn: new OvqSpawnAssignProgram(dk, dv, C, wg, ctx.variant.subgroups),
    norm: new CopyRowsProgram(dk, state.config.normalize, wg),
    copyK: new CopyRowsProgram(dk, false, wg),
    copyV: new CopyRowsProgram(dv, false, wg),
  };
}

/**
 * The read plan of a call: partial slots per batch, the most partials a chunk writes, and per
 * batch of chunks the splits of the dictionary (flash-decoding: one split per `rowsPerSplit`
 * rows, at most `maxSplits`).
 */
export function readPlan(
  ctx: GpuContext,
  state: GpuOvqState,
  tiling: ReturnType<typeof readTiling>,
  L: number,
) {
  const bh = state.batchHeads;
  const C = state.config.chunkSize;
  const W = partialLayout(state.valueDim).width;
  const N = Math.max(1, state.rowsAllocated);
  const maxSplits = Math.max(1, Math.min(tiling.maxSplits, Math.ceil(N / tiling.rowsPerSplit)));
  const PM = maxSplits * tiling.partials;
  // Positions per slot: a call shorter than a chunk (decode steps) needs only L of them.
  const CP = Math.max(1, Math.min(C, L));
  const perSlot = bh * PM * CP * W * 4;
  const budget = Math.min(PARTIAL_BUDGET, ctx.caps.maxStorageBindingSize, ctx.caps.maxBufferSize);
  const slots = Math.floor(budget / perSlot);
  const K = Math.max(1, Math.min(CHUNKS_PER_SUBMIT, Math.ceil(L / C), slots));
  const splits = (rows: number) =>
    Math.max(1, Math.min(maxSplits, Math.ceil(rows / tiling.rowsPerSplit)));
  return { K, PM, CP, splits };
}

function checkChunkFits(ctx: GpuContext, C: number): void {
  // The absorb keeps twelve C-long arrays plus two reduction arrays in workgroup memory.
  const need = 48 * C + 8 * ctx.variant.workgroupSize + 8;
  if (need > ctx.caps.maxWorkgroupStorage) {
    throw new WebGpuError(
      'config.chunkSize',
      `is ${C}; the spawn kernel needs ${need} bytes of workgroup storage but device.limits.maxComputeWorkgroupStorageSize is ${ctx.caps.maxWorkgroupStorage}`,
    );
  }
}

/**
 * `keepCheckpoints`: also keep the dictionary checkpoints `ovqBackwardGpu` replays from.
 * `save`: write the per-query log-sum-exps [BH, T] (f32) and the absorb decisions
 * [BH, A, 6C + 1] (i32) into these caller-owned tensors (shapes from `ovqSavedShapes`) instead of
 * the record's scope, so that they outlive it: with the output they are all
 * `ovqBackwardFromSavedGpu` needs, so a training framework can keep them from its forward to its
 * backward instead of running the forward again. Only from an empty state (else a WebGpuError).
 */
export type OvqForwardOptions = {
  keepCheckpoints?: boolean;
  save?: { lse: GpuTensor; trace: GpuTensor };
};

/** Shapes of the tensors a forward of `seqLen` tokens from an empty state saves (`save`). */
export function ovqSavedShapes(
  dims: { batchHeads: number; keyDim: number; valueDim: number },
  seqLen: number,
  chunkSize: number,
): { lse: [number, number]; trace: [number, number, number] } {
  const { batchHeads, keyDim, valueDim } = dims ?? ({} as typeof dims);
  checkDims({ batchHeads, seqLen, keyDim, valueDim }, true);
  requirePositiveInt('chunkSize', chunkSize);
  const A = Math.max(1, Math.floor(seqLen / chunkSize));
  return {
    lse: [dims.batchHeads, seqLen],
    trace: [dims.batchHeads, A, traceLayout(chunkSize).stride],
  };
}

/** The parts of a state the host-side absorb plan reads (a GpuOvqState, or an empty start). */
type PlanStart = {
  config: GpuOvqState['config'];
  size: number;
  tokensSeen: number;
  pendingCount: number;
  rngState: number;
};

/**
 * Host bookkeeping of a call of T tokens from `start`: per full chunk the dictionary size before
 * its absorb and the rows it spawns, and the random spawn picks. None of it depends on the data
 * (the growth schedule depends only on token counts), so a backward can recompute it.
 */
export function planAbsorbs(start: PlanStart, T: number) {
  const cfg = start.config;
  const C = cfg.chunkSize;
  const P0 = start.pendingCount;
  const L = P0 + T;
  const fullChunks = Math.floor(L / C);
  const absorbs: AbsorbMeta[] = [];
  const hostPicks: number[][] = [];
  let size = start.size;
  let rng = start.rngState;
  for (let c = 0; c < fullChunks; c++) {
    const tau = start.tokensSeen - P0 + (c + 1) * C;
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
  return { absorbs, hostPicks, rng, P0, L, sizeAfter: size };
}

/**
 * GPU level: processes q, k, v [BH, T, d] after everything `state` has seen, writing `out`
 * [BH, T, dv]. Returns the record the backward needs; the caller disposes `record.scope`.
 * Without normalisation and pending tokens the working buffers are q, k, v themselves (no
 * copies): the record's `qh`, `kw`, `vw` are then the caller's tensors.
 */
export function ovqForwardGpu(
  state: GpuOvqState,
  input: { q: GpuTensor; k: GpuTensor; v: GpuTensor; seqLen: number },
  out: GpuTensor,
  options: OvqForwardOptions = {},
): ForwardRecord {
  state.assertAlive();
  const ctx = state.ctx;
  const { batchHeads: bh, keyDim: dk, valueDim: dv } = state;
  const T = requireNonNegativeInt('seqLen', input.seqLen);
  checkTensor('q', input.q, [bh, T, dk], 'batchHeads*seqLen*keyDim', state.ctx.device);
  checkTensor('k', input.k, [bh, T, dk], 'batchHeads*seqLen*keyDim', state.ctx.device);
  checkTensor('v', input.v, [bh, T, dv], 'batchHeads*seqLen*valueDim', state.ctx.device);
  checkTensor('out', out, [bh, T, dv], 'batchHeads*seqLen*valueDim', state.ctx.device);
  const C = state.config.chunkSize;
  checkChunkFits(ctx, C);
  const host = planAbsorbs(state, T);
  const A = Math.max(1, host.absorbs.length);
  if (options.save) {
    // ovqBackwardFromSavedGpu replays the decisions from the empty dictionary with chunks from
    // token 0: a forward after other tokens would give it shifted chunks and wrong gradients.
    if (state.tokensSeen !== 0 || state.size !== 0) {
      throw new WebGpuError(
        'options.save',
        `the state has seen ${state.tokensSeen} tokens; a saved forward starts from an empty state (ovqBackwardFromSavedGpu replays it from there)`,
      );
    }
    checkTensor('save.lse', options.save.lse, [bh, T], 'batchHeads*seqLen', ctx.device);
    checkTensor(
      'save.trace',
      options.save.trace,
      [bh, A, traceLayout(C).stride],
      'batchHeads*absorbs*(6*chunkSize+1) (ovqSavedShapes)',
      ctx.device,
      'i32',
    );
  }
  state.reserve(host.sizeAfter);

  const scope = new TensorScope();
  try {
    const record = encodeForward(state, input, out, options, scope, host);
    if (options.save) stampSavedForward(state, input, out, options.save);
    return record;
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
  options: OvqForwardOptions,
  scope: TensorScope,
  host: { absorbs: AbsorbMeta[]; hostPicks: number[][]; rng: number; P0: number; L: number },
): ForwardRecord {
  const ctx = state.ctx;
  const before = { ...ctx.stats };
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
  const plan = readPlan(ctx, state, p.tiling, L);
  const wg = p.wg;
  // Copies of q, k, v are needed only to normalise them or to put pending tokens first.
  const direct = !cfg.normalize && P0 === 0;
  const qh = direct ? input.q : scope.track(ctx.tensor([bh, T, dk], 'f32', 'qHat'));
  const kw = direct ? input.k : scope.track(ctx.tensor([bh, L, dk], 'f32', 'workingKeys'));
  const vw = direct ? input.v : scope.track(ctx.tensor([bh, L, dv], 'f32', 'workingValues'));
  const lse = options.save?.lse ?? scope.track(ctx.tensor([bh, T], 'f32', 'lse'));
  const trace =
    options.save?.trace ?? scope.track(ctx.tensor([bh, A, traceLayout(C).stride], 'i32', 'trace'));
  const part = scope.track(
    ctx.tensor([bh, plan.K, plan.PM, plan.CP, partialLayout(dv).width], 'f32', 'readPartials'),
  );
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
  if (!direct) {
    copy(p.copyK, state.pendingKeys, kw, P0, C, 0, L, 0);
    copy(p.copyV, state.pendingValues, vw, P0, C, 0, L, 0);
    copy(p.norm, input.k, kw, T, T, 0, L, P0);
    copy(p.copyV, input.v, vw, T, T, 0, L, P0);
    copy(p.norm, input.q, qh, T, T, 0, T, 0);
  }
  const perCall = ctx.stats.dispatches - before.dispatches;

  let n = state.size;
  const last = absorbs[absorbs.length - 1];
  const sizeAfter = last ? last.sizeBefore + last.spawned : n;
  const readSizes = Array.from({ length: chunks }, (_, c) =>
    c < absorbs.length ? absorbs[c].sizeBefore : sizeAfter,
  );
  encodeReads(() => rec, p, plan, state, { qh, kw, vw, part, out, lse }, { L, T, P0 }, readSizes, {
    onChunk: (c, slot, parts) => {
      if (c >= fullChunks) return;
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
      const ema = cfg.update.kind === 'ema';
      rec.dispatch(
        p.spawn,
        [kw, vw, part, picksT, state.keys, state.values, state.counts, trace],
        {
          L,
          cs: c * C,
          n,
          m,
          a,
          A,
          N,
          farthest: cfg.spawn === 'farthest' ? 1 : 0,
          slot,
          parts,
          PM: plan.PM,
          K: plan.K,
          CP: plan.CP,
          ema: ema ? 1 : 0,
          rate: ema ? (cfg.update as { rate: number }).rate : 0,
        },
        [bh],
      );
      n += m;
    },
    onBatchEnd: () => {
      rec.submit();
      rec = ctx.recorder();
    },
  });
  const inChunks = ctx.stats.dispatches - before.dispatches - perCall;
  // The tail (an incomplete chunk) becomes the new pending buffer.
  const tail = L - fullChunks * C;
  copy(p.copyK, kw, state.pendingKeys, tail, L, fullChunks * C, C, 0);
  copy(p.copyV, vw, state.pendingValues, tail, L, fullChunks * C, C, 0);
  rec.submit();

  state.size = n;
  state.tokensSeen += T;
  state.pendingCount = tail;
  state.rngState = rng;
  const total = ctx.stats.dispatches - before.dispatches;
  const dispatches: ForwardDispatches = {
    chunks,
    inChunks,
    perChunk: chunks > 0 ? inChunks / chunks : 0,
    perCall: total - inChunks,
    total,
    bindGroups: ctx.stats.bindGroups - before.bindGroups,
    submits: ctx.stats.submits - before.submits,
  };
  return {
    scope,
    qh,
    kw,
    vw,
    lse,
    trace,
    absorbs,
    P0,
    L,
    sizeAfter: n,
    checkpoints,
    dispatches,
  };
}

/**
 * Encodes the reads of every chunk (rows as of each chunk start: `readSizes[c]`), in batches of
 * `plan.K` chunks whose partials one combine dispatch merges into `out`/`lse`. `onChunk` runs
 * after each chunk's read (the forward encodes its absorb there); `onBatchEnd` after each
 * batch's combine except the last.
 */
function encodeReads(
  recorder: () => Recorder,
  p: ReturnType<typeof ovqPrograms>,
  plan: ReturnType<typeof readPlan>,
  state: GpuOvqState,
  t: {
    qh: GpuTensor;
    kw: GpuTensor;
    vw: GpuTensor;
    part: GpuTensor;
    out: GpuTensor;
    lse: GpuTensor;
  },
  dims: { L: number; T: number; P0: number },
  readSizes: number[],
  hooks: { onChunk?: (c: number, slot: number, parts: number) => void; onBatchEnd?: () => void },
): void {
  const { L, T, P0 } = dims;
  const cfg = state.config;
  const C = cfg.chunkSize;
  const bh = state.batchHeads;
  const chunks = ceilDiv(L, C);
  const N = state.rowsAllocated;
  const groupsPerSplit = ceilDiv(C, p.read.queriesPerGroup);
  for (let b0 = 0; b0 < chunks; b0 += plan.K) {
    const b1 = Math.min(chunks, b0 + plan.K);
    // One split count per batch (the combine reads the same number of partials per chunk):
    // splits past a chunk's rows read nothing and leave an empty partial.
    const S = plan.splits(Math.max(...readSizes.slice(b0, b1)));
    const parts = S * p.tiling.partials;
    for (let c = b0; c < b1; c++) {
      const cs = c * C;
      const ce = Math.min(cs + C, L);
      const qs = Math.max(cs, P0);
      const n = readSizes[c];
      const full = ce - cs === C;
      if (ce > qs || full) {
        recorder().dispatch(
          p.read,
          [t.qh, t.kw, t.vw, state.keys, state.values, state.counts, t.part],
          {
            L,
            T,
            P0,
            cs,
            qs,
            qe: ce,
            n,
            N,
            beta: cfg.beta,
            RS: Math.max(1, ceilDiv(n, S)),
            S,
            near: full ? 1 : 0,
            slot: c - b0,
            K: plan.K,
            PM: plan.PM,
            CP: plan.CP,
          },
          [groupsPerSplit * S, bh],
        );
      }
      hooks.onChunk?.(c, c - b0, parts);
    }
    const start = b0 * C;
    const end = Math.min(b1 * C, L);
    if (end > Math.max(start, P0)) {
      recorder().dispatch(
        p.combine,
        [t.part, t.out, t.lse],
        { T, P0, start, end, parts, K: plan.K, PM: plan.PM, CP: plan.CP },
        [ceilDiv(end - start, p.wg), bh],
      );
    }
    if (b1 < chunks) hooks.onBatchEnd?.();
  }
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
  const C = state.config.chunkSize;
  const p = ovqPrograms(ctx, state);
  const plan = readPlan(ctx, state, p.tiling, L);
  const scope = new TensorScope();
  try {
    const part = scope.track(
      ctx.tensor([bh, plan.K, plan.PM, plan.CP, partialLayout(dv).width], 'f32', 'readPartials'),
    );
    const readSizes = Array.from({ length: ceilDiv(L, C) }, (_, c) =>
      c < absorbs.length ? absorbs[c].sizeBefore : record.sizeAfter,
    );
    let rec = ctx.recorder();
    const t = { qh: record.qh, kw: record.kw, vw: record.vw, part, out, lse: record.lse };
    encodeReads(() => rec, p, plan, state, t, { L, T, P0 }, readSizes, {
      onBatchEnd: () => {
        rec.submit();
        rec = ctx.recorder();
      },
    });
    rec.submit();
  } finally {
    ctx.disposeWhenDone(scope);
  }
}
