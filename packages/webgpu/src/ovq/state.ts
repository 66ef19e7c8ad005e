// A GPU-resident OVQ streaming state for `batchHeads` independent heads (the same config), and
// its conversion to and from @ovq/core's OvqState / serialized format, so a stream can move
// between CPU and GPU. Layout: keys [BH, N, dk], values [BH, N, dv], counts [BH, N] (float32;
// counts are exact integers below 2^24), pending keys [BH, C, dk] (normalised) and values.
import {
  createOvqState,
  deserializeOvqState,
  type OvqConfig,
  OvqState,
  type ResolvedOvqConfig,
  resolveOvqConfig,
  serializeOvqState,
} from '@ovq/core';
import type { GpuContext } from '../gpu/context.js';
import { WebGpuError } from '../gpu/errors.js';
import { ceilDiv } from '../gpu/program.js';
import type { GpuTensor } from '../gpu/tensor.js';
import { requirePositiveInt } from '../gpu/validate.js';
import { CopyRowsProgram } from '../kernels/rows/rows.js';

export type OvqStateDims = { batchHeads: number; keyDim: number; valueDim: number };

export class GpuOvqState {
  readonly ctx: GpuContext;
  readonly batchHeads: number;
  readonly keyDim: number;
  readonly valueDim: number;
  config: ResolvedOvqConfig;
  /** Active rows n (the same for every head: the growth schedule depends only on token counts). */
  size = 0;
  tokensSeen = 0;
  pendingCount = 0;
  /** mulberry32 state for `spawn: 'random'` (identical across heads, as in one OvqState each). */
  rngState: number;
  /** Allocated rows per head (≥ size). */
  rowsAllocated = 0;
  keys!: GpuTensor;
  values!: GpuTensor;
  counts!: GpuTensor;
  readonly pendingKeys: GpuTensor;
  readonly pendingValues: GpuTensor;
  private alive = true;

  constructor(ctx: GpuContext, dims: OvqStateDims, config: OvqConfig) {
    this.ctx = ctx;
    this.batchHeads = requirePositiveInt('dims.batchHeads', dims.batchHeads);
    this.keyDim = requirePositiveInt('dims.keyDim', dims.keyDim);
    this.valueDim = requirePositiveInt('dims.valueDim', dims.valueDim);
    this.config = resolveOvqConfig(config);
    if (this.config.spawnDistance !== undefined) {
      // The GPU absorb kernels implement the growth schedule's spawns only.
      throw new WebGpuError(
        'config.spawnDistance',
        `got ${this.config.spawnDistance}; novelty spawn runs on @ovq/core (CPU) only, not on the WebGPU kernels: omit it here`,
      );
    }
    this.rngState = this.config.seed >>> 0;
    const { chunkSize: C } = this.config;
    const made: GpuTensor[] = [];
    try {
      made.push(ctx.tensor([this.batchHeads, C, this.keyDim], 'f32', 'pendingKeys'));
      made.push(ctx.tensor([this.batchHeads, C, this.valueDim], 'f32', 'pendingValues'));
      this.allocate(Math.max(1, this.config.capacity));
    } catch (error) {
      // A failed constructor leaves nothing allocated.
      for (const t of made) t.dispose();
      throw error;
    }
    [this.pendingKeys, this.pendingValues] = made;
  }

  get disposed(): boolean {
    return !this.alive;
  }

  assertAlive(argument = 'state'): void {
    if (!this.alive) throw new WebGpuError(argument, 'was disposed');
    this.ctx.assertUsable();
  }

  /** Makes room for `rows` rows per head, keeping the active ones. */
  reserve(rows: number): void {
    if (rows <= this.rowsAllocated) return;
    const old = {
      keys: this.keys,
      values: this.values,
      counts: this.counts,
      rows: this.rowsAllocated,
    };
    this.allocate(rows);
    if (this.size > 0) {
      const rec = this.ctx.recorder();
      const wg = this.ctx.variant.workgroupSize;
      for (const [src, dst, dim] of [
        [old.keys, this.keys, this.keyDim],
        [old.values, this.values, this.valueDim],
        [old.counts, this.counts, 1],
      ] as const) {
        rec.dispatch(
          new CopyRowsProgram(dim, false, wg),
          [src, dst],
          {
            rows: this.size,
            srcRowsPerHead: old.rows,
            srcOffset: 0,
            dstRowsPerHead: rows,
            dstOffset: 0,
          },
          [ceilDiv(this.size, wg), this.batchHeads],
        );
      }
      rec.submit();
    }
    // The old buffers stay alive until the copies above have run.
    const release = () => {
      for (const t of [old.keys, old.values, old.counts]) t?.dispose();
    };
    this.ctx.device.queue.onSubmittedWorkDone().then(release, release);
  }

  /** All three buffers or none: a failed allocation leaves the state as it was. */
  private allocate(rows: number): void {
    const bh = this.batchHeads;
    const made: GpuTensor[] = [];
    try {
      made.push(this.ctx.tensor([bh, rows, this.keyDim], 'f32', 'centroidKeys'));
      made.push(this.ctx.tensor([bh, rows, this.valueDim], 'f32', 'centroidValues'));
      made.push(this.ctx.tensor([bh, rows], 'f32', 'counts'));
    } catch (error) {
      for (const t of made) t.dispose();
      throw error;
    }
    [this.keys, this.values, this.counts] = made;
    this.rowsAllocated = rows;
  }

  /** Changes the capacity N (a test-time memory budget), as @ovq/core's setOvqCapacity. */
  setCapacity(capacity: number): void {
    this.config = { ...this.config, capacity: requirePositiveInt('capacity', capacity) };
  }

  /** Destroys every buffer of the state. */
  dispose(): void {
    if (!this.alive) return;
    this.alive = false;
    for (const t of [this.keys, this.values, this.counts, this.pendingKeys, this.pendingValues])
      t.dispose();
  }
}

export function createGpuOvqState(
  ctx: GpuContext,
  dims: OvqStateDims,
  config: OvqConfig,
): GpuOvqState {
  return new GpuOvqState(ctx, dims, config);
}

/** Reads the state back as one @ovq/core OvqState per head (float32 values widened). */
export async function readOvqState(state: GpuOvqState): Promise<OvqState[]> {
  state.assertAlive();
  const { batchHeads: bh, keyDim: dk, valueDim: dv, rowsAllocated: N, size: n } = state;
  const C = state.config.chunkSize;
  const [keys, values, counts, pk, pv] = await Promise.all(
    [state.keys, state.values, state.counts, state.pendingKeys, state.pendingValues].map((t) =>
      state.ctx.readF32(t),
    ),
  );
  const out: OvqState[] = [];
  for (let h = 0; h < bh; h++) {
    // core's states are read-only: built (and validated) from the read-back arrays.
    const P = state.pendingCount;
    const s = createOvqState({ keyDim: dk, valueDim: dv }, state.config, {
      counts: counts.subarray(h * N, h * N + n),
      centroidKeys: keys.subarray(h * N * dk, (h * N + n) * dk),
      centroidValues: values.subarray(h * N * dv, (h * N + n) * dv),
      pendingKeys: pk.subarray(h * C * dk, (h * C + P) * dk),
      pendingValues: pv.subarray(h * C * dv, (h * C + P) * dv),
      tokensSeen: state.tokensSeen,
      rngState: state.rngState,
    });
    out.push(s);
  }
  return out;
}

/** Serialized form (one `serializeOvqState` blob per head). */
export async function serializeGpuOvqState(state: GpuOvqState): Promise<Uint8Array[]> {
  return (await readOvqState(state)).map(serializeOvqState);
}

/**
 * Uploads per-head states (OvqState objects or their serialized bytes) into a new GPU state.
 * All heads must share dims, config, size and counters: one GPU state advances them in lockstep.
 */
export function uploadOvqState(ctx: GpuContext, heads: (OvqState | Uint8Array)[]): GpuOvqState {
  if (!Array.isArray(heads) || heads.length === 0) {
    throw new WebGpuError(
      'heads',
      `got ${Array.isArray(heads) ? 'an empty array' : typeof heads}; expected one OvqState (or serialized state) per head`,
    );
  }
  const states = heads.map((h, i) => {
    if (h instanceof Uint8Array) return deserializeOvqState(h);
    if (h instanceof OvqState) return h;
    throw new WebGpuError(
      `heads[${i}]`,
      `got ${typeof h}; expected an OvqState or a Uint8Array from serializeOvqState`,
    );
  });
  const first = states[0];
  const key = (s: OvqState) =>
    JSON.stringify([
      s.keyDim,
      s.valueDim,
      s.size,
      s.tokensSeen,
      s.pendingCount,
      s.rngState,
      { ...s.config, capacity: 0 },
    ]);
  states.forEach((s, i) => {
    if (key(s) !== key(first)) {
      throw new WebGpuError(
        `heads[${i}]`,
        `has dims/config/counters ${key(s)}; expected the same as heads[0] (${key(first)})`,
      );
    }
  });
  const gpu = new GpuOvqState(
    ctx,
    { batchHeads: states.length, keyDim: first.keyDim, valueDim: first.valueDim },
    first.config,
  );
  const n = first.size;
  gpu.reserve(n);
  const N = gpu.rowsAllocated;
  const { keyDim: dk, valueDim: dv } = first;
  const C = first.config.chunkSize;
  const bh = states.length;
  const keys = new Float32Array(bh * N * dk);
  const values = new Float32Array(bh * N * dv);
  const counts = new Float32Array(bh * N);
  const pk = new Float32Array(bh * C * dk);
  const pv = new Float32Array(bh * C * dv);
  states.forEach((s, h) => {
    keys.set(s.centroidKeys, h * N * dk);
    values.set(s.centroidValues, h * N * dv);
    counts.set(s.counts, h * N);
    pk.set(s.pendingKeys.subarray(0, s.pendingCount * dk), h * C * dk);
    pv.set(s.pendingValues.subarray(0, s.pendingCount * dv), h * C * dv);
  });
  const q = ctx.device.queue;
  q.writeBuffer(gpu.keys.buffer, 0, keys);
  q.writeBuffer(gpu.values.buffer, 0, values);
  q.writeBuffer(gpu.counts.buffer, 0, counts);
  q.writeBuffer(gpu.pendingKeys.buffer, 0, pk);
  q.writeBuffer(gpu.pendingValues.buffer, 0, pv);
  gpu.size = n;
  gpu.tokensSeen = first.tokensSeen;
  gpu.pendingCount = first.pendingCount;
  gpu.rngState = first.rngState;
  return gpu;
}
