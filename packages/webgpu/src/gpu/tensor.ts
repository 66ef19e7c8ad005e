// A GPU buffer with a shape and an owner. JS has no destructors, so every tensor is destroyed
// explicitly: by `dispose()`, by the scope that created it, or by `GpuContext.dispose()`.

export type DType = 'f32' | 'i32';

export interface TensorOwner {
  release(tensor: GpuTensor): void;
  /** The device the owner allocates on (absent for borrowed buffers, e.g. tfjs's). */
  readonly device?: GPUDevice;
}

export class GpuTensor {
  readonly buffer: GPUBuffer;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly label: string;
  private owner: TensorOwner | null;

  constructor(
    buffer: GPUBuffer,
    shape: readonly number[],
    dtype: DType,
    label: string,
    owner: TensorOwner,
  ) {
    this.buffer = buffer;
    this.shape = shape;
    this.dtype = dtype;
    this.label = label;
    this.owner = owner;
  }

  /** Number of elements (product of the shape). */
  get length(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }

  get disposed(): boolean {
    return this.owner === null;
  }

  /** The device that created the buffer, when known (null for borrowed or disposed tensors). */
  get device(): GPUDevice | null {
    return this.owner?.device ?? null;
  }

  /** Destroys the GPU buffer now. Safe to call twice. */
  dispose(): void {
    if (!this.owner) return;
    const owner = this.owner;
    this.owner = null;
    this.buffer.destroy();
    owner.release(this);
  }
}

/** Tensors created for one operation; `dispose()` destroys all of them that are still alive. */
export class TensorScope {
  private readonly live = new Set<GpuTensor>();

  track<T extends GpuTensor>(tensor: T): T {
    this.live.add(tensor);
    return tensor;
  }

  /** Hands `tensor` to the caller: the scope will no longer destroy it. */
  keep<T extends GpuTensor>(tensor: T): T {
    this.live.delete(tensor);
    return tensor;
  }

  dispose(): void {
    for (const t of this.live) t.dispose();
    this.live.clear();
  }
}
