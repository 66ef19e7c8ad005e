// GpuContext: one per GPUDevice. Owns the pipeline cache (compiled once per shaderKey), every
// tensor it creates (destroyed by `dispose()`), and turns device loss and validation errors into
// WebGpuErrors that say what happened.
import { checkRequiredLimits, type DeviceCaps, queryCaps } from '../device/limits.js';
import { subgroupLayoutOf } from '../device/subgroup-layout.js';
import { chooseVariant, type Variant } from '../device/variants.js';
import { WebGpuError } from './errors.js';
import { buildShader, type Program } from './program.js';
import { Recorder } from './recorder.js';
import { type DType, GpuTensor, type TensorOwner, type TensorScope } from './tensor.js';

type CachedPipeline = { pipeline: GPUComputePipeline; layout: GPUBindGroupLayout };

export class GpuContext implements TensorOwner {
  readonly device: GPUDevice;
  readonly caps: DeviceCaps;
  readonly variant: Variant;
  private readonly pipelines = new Map<string, CachedPipeline>();
  private readonly live = new Set<GpuTensor>();
  /** Error scopes not yet settled; each removes itself when it settles (no unbounded growth). */
  private readonly pendingScopes = new Set<Promise<void>>();
  /** The first GPU error reported and not yet thrown (thrown by the next call that checks). */
  private firstError: string | null = null;
  private lostMessage: string | null = null;
  private disposed = false;
  /** Testing aid: fill every output tensor with NaN so a kernel that skips a write is caught. */
  readonly poisonOutputs: boolean;
  /** Dispatches encoded, submits and bind groups created by this context's recorders so far. */
  readonly stats = { dispatches: 0, submits: 0, bindGroups: 0 };

  /**
   * `subgroups: false` keeps the plain kernels where the device has `subgroups` (default: use
   * them; OVQ_WEBGPU_SUBGROUPS=0 does the same in Node). The subgroup kernels also need the
   * device's layout probe to have passed (`await probeSubgroupLayout(device)`, which
   * acquireDevice() runs); `variant.subgroupsDisabledBecause` says why they were not chosen.
   */
  constructor(device: GPUDevice, options: { poisonOutputs?: boolean; subgroups?: boolean } = {}) {
    this.poisonOutputs = options.poisonOutputs ?? false;
    if (!device || typeof (device as GPUDevice).createBuffer !== 'function') {
      throw new WebGpuError('device', `got ${String(device)}; expected a GPUDevice`);
    }
    checkRequiredLimits(device);
    this.device = device;
    this.caps = queryCaps(device);
    this.variant = chooseVariant(this.caps, {
      subgroups: options.subgroups,
      subgroupLayout: subgroupLayoutOf(device),
    });
    device.lost.then((info) => {
      this.lostMessage = `reason ${info.reason}${info.message ? `: ${info.message}` : ''}`;
    });
  }

  /** Number of compiled pipelines (for tests of the cache). */
  get pipelineCount(): number {
    return this.pipelines.size;
  }

  /** Cache keys of the compiled pipelines (which kernel variants were chosen). */
  get pipelineKeys(): string[] {
    return [...this.pipelines.keys()];
  }

  /** Number of tensors created by this context and not yet destroyed. */
  get liveTensors(): number {
    return this.live.size;
  }

  /** Throws if the device was lost or the context disposed. */
  assertUsable(): void {
    if (this.disposed) throw new WebGpuError('context', 'was disposed; create a new GpuContext');
    if (this.lostMessage !== null) {
      throw new WebGpuError('device', `was lost (${this.lostMessage}); acquire a new GPUDevice`);
    }
    this.throwReported();
  }

  /** Throws (once) the first GPU error an earlier submit, allocation or compile reported. */
  private throwReported(): void {
    const message = this.firstError;
    if (message === null) return;
    this.firstError = null;
    throw new WebGpuError('gpu', `WebGPU reported an error: ${message}`);
  }

  /** Records what a popped error scope reports; `what` names the buffer or work it covered. */
  private watch(scope: Promise<GPUError | null>, what: string): void {
    const settled = scope.then(
      (error) => {
        if (error && this.firstError === null) this.firstError = `${what}: ${error.message}`;
      },
      (cause: unknown) => {
        if (this.firstError === null) this.firstError = `${what}: ${String(cause)}`;
      },
    );
    const tracked = settled.finally(() => this.pendingScopes.delete(tracked));
    this.pendingScopes.add(tracked);
  }

  /** Lets a pending `device.lost` settle, then checks (for async entry points). */
  async assertUsableAsync(): Promise<void> {
    await Promise.race([this.device.lost, new Promise((r) => setTimeout(r, 0))]);
    await new Promise((r) => setTimeout(r, 0));
    this.assertUsable();
  }

  pipeline(program: Program): CachedPipeline {
    const cached = this.pipelines.get(program.shaderKey);
    if (cached) return cached;
    this.assertUsable();
    const entries: GPUBindGroupLayoutEntry[] = [
      {
        binding: 0,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: 'uniform', hasDynamicOffset: true },
      },
      ...program.bindings.map((b, i) => ({
        binding: i + 1,
        visibility: GPUShaderStage.COMPUTE,
        buffer: { type: b.kind === 'read' ? ('read-only-storage' as const) : ('storage' as const) },
      })),
    ];
    this.device.pushErrorScope('validation');
    const layout = this.device.createBindGroupLayout({ entries, label: program.shaderKey });
    const module = this.device.createShaderModule({
      code: buildShader(program),
      label: program.shaderKey,
    });
    const pipeline = this.device.createComputePipeline({
      label: program.shaderKey,
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: 'main' },
    });
    this.watch(this.device.popErrorScope(), `compiling ${program.shaderKey}`);
    const entry = { pipeline, layout };
    this.pipelines.set(program.shaderKey, entry);
    return entry;
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes; what they report is thrown by
   * `checkErrors` or by the next call that checks the context (any entry point).
   */
  trackErrors<T>(fn: () => T, what = 'submitted work'): T {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    try {
      return fn();
    } finally {
      this.watch(this.device.popErrorScope(), what);
      this.watch(this.device.popErrorScope(), `${what} (out of memory)`);
    }
  }

  /** Error scopes pushed and not yet settled (tests wait for 0 before expecting a throw). */
  get pendingErrorScopes(): number {
    return this.pendingScopes.size;
  }

  /** Awaits every error scope so far; throws the first error reported, naming what it covered. */
  async checkErrors(): Promise<void> {
    while (this.pendingScopes.size > 0) await Promise.all([...this.pendingScopes]);
    this.assertUsable();
  }

  /** A new zero-filled tensor of `shape` (f32 or i32), usable as storage and copy source/target. */
  tensor(shape: readonly number[], dtype: DType = 'f32', label = 'tensor'): GpuTensor {
    this.assertUsable();
    const length = shape.reduce((a, b) => a * b, 1);
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) {
        throw new WebGpuError(
          label,
          `shape [${shape.join(', ')}] has ${d}; expected non-negative integers`,
        );
      }
    }
    // Zero-size buffers cannot be bound; 16 bytes keeps offsets aligned for every backend.
    const size = Math.max(16, Math.ceil((length * 4) / 16) * 16);
    const limit =
      this.caps.maxBufferSize <= this.caps.maxStorageBindingSize
        ? { name: 'maxBufferSize', value: this.caps.maxBufferSize }
        : { name: 'maxStorageBufferBindingSize', value: this.caps.maxStorageBindingSize };
    if (size > limit.value) {
      throw new WebGpuError(
        label,
        `needs ${size} bytes (shape [${shape.join(', ')}]); device.limits.${limit.name} is ${limit.value}`,
      );
    }
    // Inside error scopes: a failed allocation is reported naming this buffer, not later as
    // "invalid due to a previous error".
    const buffer = this.trackErrors(
      () =>
        this.device.createBuffer({
          size,
          label,
          usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        }),
      `allocating buffer '${label}' (${size} bytes, shape [${shape.join(', ')}])`,
    );
    const t = new GpuTensor(buffer, shape, dtype, label, this);
    this.live.add(t);
    return t;
  }

  /** A tensor every element of which the caller's kernels overwrite (NaN-filled when poisoning). */
  output(shape: readonly number[], dtype: DType = 'f32', label = 'output'): GpuTensor {
    const t = this.tensor(shape, dtype, label);
    if (this.poisonOutputs && t.length > 0) {
      const fill =
        dtype === 'f32'
          ? new Float32Array(t.length).fill(Number.NaN)
          : new Int32Array(t.length).fill(-7);
      this.device.queue.writeBuffer(t.buffer, 0, fill);
    }
    return t;
  }

  /** A tensor holding `data` (converted to f32, or i32 when `dtype` says so). */
  upload(
    data: ArrayLike<number>,
    shape: readonly number[],
    dtype: DType = 'f32',
    label = 'tensor',
  ): GpuTensor {
    const t = this.tensor(shape, dtype, label);
    if (data.length !== t.length) {
      t.dispose();
      throw new WebGpuError(
        label,
        `has ${data.length} values; expected ${shape.join('*')} = ${t.length}`,
      );
    }
    const array = dtype === 'f32' ? Float32Array.from(data) : Int32Array.from(data);
    if (array.length > 0) this.device.queue.writeBuffer(t.buffer, 0, array);
    return t;
  }

  /** Copies a tensor back to the host (one round trip). */
  async read(t: GpuTensor): Promise<Float32Array | Int32Array> {
    this.assertUsable();
    if (t.disposed) throw new WebGpuError(t.label, 'was disposed; cannot read it back');
    const bytes = Math.max(4, t.length * 4);
    const staging = this.device.createBuffer({
      size: Math.ceil(bytes / 4) * 4,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const enc = this.device.createCommandEncoder();
      enc.copyBufferToBuffer(t.buffer, 0, staging, 0, Math.ceil(bytes / 4) * 4);
      this.device.queue.submit([enc.finish()]);
      try {
        await staging.mapAsync(GPUMapMode.READ);
      } catch (cause) {
        await this.assertUsableAsync();
        throw new WebGpuError(t.label, `read-back failed: ${String(cause)}`);
      }
      const range = staging.getMappedRange().slice(0, t.length * 4);
      staging.unmap();
      return t.dtype === 'f32' ? new Float32Array(range) : new Int32Array(range);
    } finally {
      staging.destroy();
    }
  }

  async readF32(t: GpuTensor): Promise<Float32Array> {
    return (await this.read(t)) as Float32Array;
  }

  async readI32(t: GpuTensor): Promise<Int32Array> {
    return (await this.read(t)) as Int32Array;
  }

  /** A command recorder: dispatches and copies encoded together, submitted by `submit()`. */
  recorder(): Recorder {
    this.assertUsable();
    return new Recorder(this);
  }

  /** Active GPU timer (timestamp-query): the first pass after start, the last pass of each submit. */
  timer: { querySet: GPUQuerySet; begun: boolean } | null = null;

  /**
   * Starts timing the GPU work submitted from now on with timestamp queries; returns false (and
   * does nothing) when the device lacks `timestamp-query`.
   */
  startTimer(): boolean {
    if (!this.caps.timestamps) return false;
    this.timer = {
      querySet: this.device.createQuerySet({ type: 'timestamp', count: 2 }),
      begun: false,
    };
    return true;
  }

  /** Stops the timer; resolves to GPU milliseconds between the first and last timed pass. */
  async stopTimer(): Promise<number | null> {
    const timer = this.timer;
    this.timer = null;
    if (!timer) return null;
    const resolve = this.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    const staging = this.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.device.createCommandEncoder();
    enc.resolveQuerySet(timer.querySet, 0, 2, resolve, 0);
    enc.copyBufferToBuffer(resolve, 0, staging, 0, 16);
    this.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const [t0, t1] = new BigUint64Array(staging.getMappedRange().slice(0));
    staging.unmap();
    for (const b of [resolve, staging]) b.destroy();
    timer.querySet.destroy();
    return timer.begun && t1 > t0 ? Number(t1 - t0) / 1e6 : null;
  }

  /** Resolves when the GPU has finished everything submitted so far. */
  async finish(): Promise<void> {
    await this.device.queue.onSubmittedWorkDone();
    this.assertUsable();
  }

  /** Destroys a scope's tensors once the GPU has finished the work submitted so far. */
  disposeWhenDone(scope: TensorScope): void {
    this.device.queue.onSubmittedWorkDone().then(
      () => scope.dispose(),
      () => scope.dispose(),
    );
  }

  release(tensor: GpuTensor): void {
    this.live.delete(tensor);
  }

  /** Destroys every tensor this context created and forgets its pipelines. The device stays. */
  dispose(): void {
    for (const t of [...this.live]) t.dispose();
    this.pipelines.clear();
    this.disposed = true;
  }
}
