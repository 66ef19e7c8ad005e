// Batches dispatches and copies into one command buffer. Every dispatch's parameters go into one
// uniform buffer at 256-byte-aligned slots, bound with a dynamic offset, so a whole chunk range is
// encoded without any host round trip, and one bind group per program and buffer set serves
// every dispatch of a submit.
import type { GpuContext } from './context.js';
import { WebGpuError } from './errors.js';
import { MAX_PARAMS, type Program } from './program.js';
import type { GpuTensor } from './tensor.js';

type Dispatch = {
  kind: 'dispatch';
  program: Program;
  tensors: GpuTensor[];
  slot: number;
  groups: [number, number, number];
};
type Copy = {
  kind: 'copy';
  src: GpuTensor;
  srcOffset: number;
  dst: GpuTensor;
  dstOffset: number;
  count: number;
};

/** A small id per GPUBuffer, for bind-group cache keys. */
const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 0;
function bufferId(t: GpuTensor): number {
  let id = bufferIds.get(t.buffer);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(t.buffer, id);
  }
  return id;
}

export type TimestampPair = { querySet: GPUQuerySet; begin: number; end: number };

export class Recorder {
  private readonly ops: (Dispatch | Copy)[] = [];
  private readonly slotBytes: number;
  private params: ArrayBuffer;
  private slots = 0;

  constructor(private readonly ctx: GpuContext) {
    this.slotBytes = Math.max(256, ctx.caps.uniformAlignment);
    this.params = new ArrayBuffer(this.slotBytes * 16);
  }

  get size(): number {
    return this.ops.length;
  }

  dispatch(
    program: Program,
    tensors: GpuTensor[],
    params: Record<string, number>,
    groups: [number, number?, number?],
  ): void {
    if (tensors.length !== program.bindings.length) {
      throw new WebGpuError(
        program.shaderKey,
        `got ${tensors.length} buffers; expected ${program.bindings.length}`,
      );
    }
    tensors.forEach((t, i) => {
      if (t.disposed) throw new WebGpuError(program.bindings[i].name, `(${t.label}) was disposed`);
      if (t.device && t.device !== this.ctx.device) {
        throw new WebGpuError(
          program.bindings[i].name,
          `(${t.label}) was created on another GPUDevice; use tensors of this context's device`,
        );
      }
    });
    const [x, y = 1, z = 1] = groups;
    if (x === 0 || y === 0 || z === 0) return;
    const maxGroups = this.ctx.caps.maxWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new WebGpuError(
        program.shaderKey,
        `dispatch [${x}, ${y}, ${z}] exceeds maxComputeWorkgroupsPerDimension ${maxGroups}`,
      );
    }
    if (program.params.length > MAX_PARAMS)
      throw new WebGpuError(program.shaderKey, 'too many parameters');
    const slot = this.slots++;
    if (this.slots * this.slotBytes > this.params.byteLength) {
      const grown = new ArrayBuffer(this.params.byteLength * 2);
      new Uint8Array(grown).set(new Uint8Array(this.params));
      this.params = grown;
    }
    const view = new DataView(this.params, slot * this.slotBytes, this.slotBytes);
    program.params.forEach(([name, type], i) => {
      const value = params[name];
      if (typeof value !== 'number' || Number.isNaN(value)) {
        throw new WebGpuError(`${program.shaderKey}.${name}`, `got ${value}; expected a number`);
      }
      if (type === 'f32') view.setFloat32(i * 4, value, true);
      else if (type === 'u32') view.setUint32(i * 4, value >>> 0, true);
      else view.setInt32(i * 4, value | 0, true);
    });
    this.ops.push({ kind: 'dispatch', program, tensors, slot, groups: [x, y, z] });
    this.ctx.stats.dispatches++;
  }

  /** Copies `count` elements (4 bytes each) between tensors. */
  copy(src: GpuTensor, srcOffset: number, dst: GpuTensor, dstOffset: number, count: number): void {
    if (count <= 0) return;
    for (const t of [src, dst]) {
      if (t.disposed) throw new WebGpuError('copy', `(${t.label}) was disposed`);
      if (t.device && t.device !== this.ctx.device)
        throw new WebGpuError('copy', `(${t.label}) was created on another GPUDevice`);
    }
    if (srcOffset + count > src.length || dstOffset + count > dst.length) {
      throw new WebGpuError(
        'copy',
        `range out of bounds (${src.label}[${srcOffset}+${count}] of ${src.length}, ${dst.label}[${dstOffset}+${count}] of ${dst.length})`,
      );
    }
    this.ops.push({ kind: 'copy', src, srcOffset, dst, dstOffset, count });
  }

  /** Encodes and submits everything recorded; the recorder is empty afterwards. */
  submit(timestamps?: TimestampPair): void {
    const ctx = this.ctx;
    ctx.assertUsable();
    if (this.ops.length === 0) return;
    const device = ctx.device;
    const names = [
      ...new Set(this.ops.map((op) => (op.kind === 'copy' ? 'copy' : op.program.shaderKey))),
    ];
    const what = `submit of ${this.ops.length} ops (${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''})`;
    ctx.trackErrors(() => {
      const uniform = device.createBuffer({
        size: this.slots * this.slotBytes,
        usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        label: 'params',
      });
      device.queue.writeBuffer(uniform, 0, this.params, 0, this.slots * this.slotBytes);
      const encoder = device.createCommandEncoder();
      let pass: GPUComputePassEncoder | null = null;
      const passCount = this.countPasses();
      let passIndex = 0;
      const bindGroups = new Map<string, GPUBindGroup>();
      for (const op of this.ops) {
        if (op.kind === 'copy') {
          pass?.end();
          pass = null;
          encoder.copyBufferToBuffer(
            op.src.buffer,
            op.srcOffset * 4,
            op.dst.buffer,
            op.dstOffset * 4,
            op.count * 4,
          );
          continue;
        }
        if (!pass) {
          const first = passIndex === 0;
          const last = passIndex === passCount - 1;
          passIndex++;
          const timer = ctx.timer;
          const begin = timer !== null && !timer.begun;
          if (begin && timer) timer.begun = true;
          const tw: GPUComputePassTimestampWrites | undefined =
            timestamps && (first || last)
              ? {
                  querySet: timestamps.querySet,
                  ...(first ? { beginningOfPassWriteIndex: timestamps.begin } : {}),
                  ...(last ? { endOfPassWriteIndex: timestamps.end } : {}),
                }
              : timer && (begin || last)
                ? {
                    querySet: timer.querySet,
                    ...(begin ? { beginningOfPassWriteIndex: 0 } : {}),
                    ...(last ? { endOfPassWriteIndex: 1 } : {}),
                  }
                : undefined;
          pass = encoder.beginComputePass(tw ? { timestampWrites: tw } : {});
        }
        const { pipeline, layout } = ctx.pipeline(op.program);
        const key = `${op.program.shaderKey}|${op.tensors.map(bufferId).join(',')}`;
        let bindGroup = bindGroups.get(key);
        if (!bindGroup) {
          bindGroup = device.createBindGroup({
            layout,
            entries: [
              { binding: 0, resource: { buffer: uniform, offset: 0, size: 256 } },
              ...op.tensors.map((t, i) => ({ binding: i + 1, resource: { buffer: t.buffer } })),
            ],
          });
          bindGroups.set(key, bindGroup);
          ctx.stats.bindGroups++;
        }
        pass.setPipeline(pipeline);
        pass.setBindGroup(0, bindGroup, [op.slot * this.slotBytes]);
        pass.dispatchWorkgroups(...op.groups);
      }
      pass?.end();
      device.queue.submit([encoder.finish()]);
      ctx.stats.submits++;
      // The parameter block lives until the GPU is done with this submission.
      device.queue.onSubmittedWorkDone().then(
        () => uniform.destroy(),
        () => uniform.destroy(),
      );
    }, what);
    this.ops.length = 0;
    this.slots = 0;
  }

  private countPasses(): number {
    let passes = 0;
    let inPass = false;
    for (const op of this.ops) {
      if (op.kind === 'copy') inPass = false;
      else if (!inPass) {
        passes++;
        inPass = true;
      }
    }
    return passes;
  }
}
