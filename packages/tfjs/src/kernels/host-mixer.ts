// Registers a sequence mixer that runs per [batch, head] on the host (the @ovq/core and
// @ovq/baselines Float32/Float64 paths) as a tfjs kernel for the `cpu` and `wasm` backends, plus a
// gradient that calls the mixer's own backward (a reverse scan), never tfjs autodiff through a loop.
//
// Tensor layout: q, k [batch, heads, seqLen, keyDim]; v [batch, heads, seqLen, valueDim]; extra
// inputs are per head ([heads, ...], e.g. OVQ's β or a VQ codebook) or per token
// ([batch, heads, seqLen], e.g. a decay).
import {
  type DataType,
  engine,
  getGradient,
  getKernel,
  type KernelBackend,
  type NamedAttrMap,
  type NamedTensorInfoMap,
  registerGradient,
  registerKernel,
  type Tensor,
  type TensorInfo,
} from '@tensorflow/tfjs-core';
import { runOnBaselinePool } from '../parallel/baseline-pool.js';
import { baselineWorkerPool } from '../parallel/pool.js';

/** One head of one sequence, as the host paths take it (views into the batched inputs). */
export type HeadData = {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  seqLen: number;
  keyDim: number;
  valueDim: number;
  /** Index of the head (for per-head parameters). */
  head: number;
  /** Extra inputs of this head, in `extras` order: its slice of a per-head input, or seqLen values. */
  extras: Float32Array[];
};

export type ExtraInput = { name: string; kind: 'perHead' | 'perToken' };

/** Gradients of ⟨dOutput, output⟩ for one head; extras in `extras` order, shaped like HeadData's. */
export type HeadGradients = {
  dq: ArrayLike<number>;
  dk: ArrayLike<number>;
  dv: ArrayLike<number>;
  extras: ArrayLike<number>[];
};

export type HostMixer<C> = {
  /** Kernel name (public: it appears in tfjs errors and profiles); the backward is `${name}Grad`. */
  kernelName: string;
  extras: readonly ExtraInput[];
  /** Parses the JSON config attribute (validated by the op before the kernel runs). */
  parseConfig(json: string): C;
  forward(head: HeadData, config: C): ArrayLike<number>;
  backward(head: HeadData, config: C, dOutput: Float32Array): HeadGradients;
  /**
   * Optional: every [batch, head] in one call (per-head parameters without a per-head JS loop,
   * and the heads on the host worker pool when one is set). Used instead of forward/backward.
   */
  forwardBatched?(x: BatchedInputs, config: C): Float32Array;
  backwardBatched?(x: BatchedInputs, config: C, dOutput: Float32Array): BatchedGradientsOut;
};

/** Gradients of a batched call: dq, dk, dv in the inputs' layout, extras in their input shapes. */
export type BatchedGradientsOut = {
  dq: Float32Array;
  dk: Float32Array;
  dv: Float32Array;
  extras: Float32Array[];
};

/** Backends whose tensors the host kernels can read synchronously and write without a copy-back. */
export const HOST_BACKENDS = ['cpu', 'wasm'] as const;

type HostBackend = KernelBackend & {
  readSync(dataId: object): unknown;
  /** wasm: a view of the tensor in its heap (no copy). */
  typedArrayFromHeap?(info: TensorInfo): unknown;
  makeTensorInfo?(shape: number[], dtype: DataType, values?: Float32Array): TensorInfo;
  makeOutput?(shape: number[], dtype: DataType, offset?: number, values?: Float32Array): TensorInfo;
};

/**
 * The tensor's values without a copy where the backend allows: wasm's heap view (valid until tfjs
 * next allocates, which no kernel here does before it has read its inputs), cpu's own array.
 */
function read(backend: HostBackend, info: TensorInfo): Float32Array {
  if (typeof backend.typedArrayFromHeap === 'function' && info.dtype === 'float32') {
    const view = backend.typedArrayFromHeap(info);
    if (view instanceof Float32Array) return view;
  }
  const values = backend.readSync(info.dataId);
  return values instanceof Float32Array ? values : Float32Array.from(values as ArrayLike<number>);
}

// cpu keeps the array as the tensor's storage (makeTensorInfo): a view of a worker pool's arena
// (reused by the next call) is copied first; wasm has no makeTensorInfo and copies the array into
// its heap (makeOutput). cpu's own makeOutput has another signature.
function write(backend: HostBackend, shape: number[], values: Float32Array): TensorInfo {
  if (typeof backend.makeTensorInfo === 'function') {
    const own =
      typeof SharedArrayBuffer === 'function' && values.buffer instanceof SharedArrayBuffer
        ? values.slice()
        : values;
    return backend.makeTensorInfo(shape, 'float32', own);
  }
  if (typeof backend.makeOutput === 'function') {
    return backend.makeOutput(shape, 'float32', undefined, values);
  }
  throw new Error(`backend ${engine().backendName} cannot create tensors from host values`);
}

/** All heads' inputs of one kernel call, as the host reads them. */
export type BatchedInputs = {
  batch: number;
  heads: number;
  seqLen: number;
  keyDim: number;
  valueDim: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  extras: Float32Array[];
  /** Values per head of each per-head extra (product of its shape after the first axis). */
  extraWidth: number[];
  extraShape: number[][];
};

function gather(backend: HostBackend, inputs: NamedTensorInfoMap, extras: readonly ExtraInput[]) {
  const q = inputs.q as TensorInfo;
  const v = inputs.v as TensorInfo;
  const [batch, heads, seqLen, keyDim] = q.shape;
  const batched: BatchedInputs = {
    batch,
    heads,
    seqLen,
    keyDim,
    valueDim: v.shape[3],
    q: read(backend, q),
    k: read(backend, inputs.k as TensorInfo),
    v: read(backend, v),
    extras: extras.map((e) => read(backend, inputs[e.name] as TensorInfo)),
    extraShape: extras.map((e) => (inputs[e.name] as TensorInfo).shape),
    extraWidth: extras.map((e) =>
      (inputs[e.name] as TensorInfo).shape.slice(1).reduce((a, b) => a * b, 1),
    ),
  };
  return batched;
}

function headView(x: BatchedInputs, extras: readonly ExtraInput[], b: number, h: number): HeadData {
  const { heads, seqLen: T, keyDim: dk, valueDim: dv } = x;
  const bh = b * heads + h;
  return {
    q: x.q.subarray(bh * T * dk, (bh + 1) * T * dk),
    k: x.k.subarray(bh * T * dk, (bh + 1) * T * dk),
    v: x.v.subarray(bh * T * dv, (bh + 1) * T * dv),
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
    head: h,
    extras: extras.map((e, i) =>
      e.kind === 'perHead'
        ? x.extras[i].subarray(h * x.extraWidth[i], (h + 1) * x.extraWidth[i])
        : x.extras[i].subarray(bh * T, (bh + 1) * T),
    ),
  };
}

function forwardKernel<C>(mixer: HostMixer<C>) {
  return ({
    inputs,
    backend,
    attrs,
  }: {
    inputs: NamedTensorInfoMap;
    backend: unknown;
    attrs?: NamedAttrMap;
  }) => {
    const host = backend as HostBackend;
    const x = gather(host, inputs, mixer.extras);
    const config = mixer.parseConfig(attrs?.config as string);
    const { batch, heads, seqLen: T, valueDim: dv } = x;
    if (mixer.forwardBatched)
      return write(host, [batch, heads, T, dv], mixer.forwardBatched(x, config));
    const pool = baselineWorkerPool();
    if (pool !== null) {
      const [out] = runOnBaselinePool(
        pool,
        mixer.kernelName,
        'forward',
        attrs?.config as string,
        x,
        mixer.extras,
        null,
      );
      return write(host, [batch, heads, T, dv], out);
    }
    const out = new Float32Array(batch * heads * T * dv);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const y = mixer.forward(headView(x, mixer.extras, b, h), config);
        out.set(y, (b * heads + h) * T * dv);
      }
    }
    return write(host, [batch, heads, T, dv], out);
  };
}

function backwardKernel<C>(mixer: HostMixer<C>) {
  return ({
    inputs,
    backend,
    attrs,
  }: {
    inputs: NamedTensorInfoMap;
    backend: unknown;
    attrs?: NamedAttrMap;
  }) => {
    const host = backend as HostBackend;
    const x = gather(host, inputs, mixer.extras);
    const dy = read(host, inputs.dy as TensorInfo);
    const config = mixer.parseConfig(attrs?.config as string);
    const { batch, heads, seqLen: T, keyDim: dk, valueDim: dv } = x;
    if (mixer.backwardBatched) {
      const g = mixer.backwardBatched(x, config, dy);
      return [
        write(host, [batch, heads, T, dk], g.dq),
        write(host, [batch, heads, T, dk], g.dk),
        write(host, [batch, heads, T, dv], g.dv),
        ...g.extras.map((d, i) => write(host, x.extraShape[i], d)),
      ];
    }
    const pool = baselineWorkerPool();
    if (pool !== null) {
      const [dq, dkAll, dvAll, ...perHead] = runOnBaselinePool(
        pool,
        mixer.kernelName,
        'backward',
        attrs?.config as string,
        x,
        mixer.extras,
        dy,
      );
      return [
        write(host, [batch, heads, T, dk], dq),
        write(host, [batch, heads, T, dk], dkAll),
        write(host, [batch, heads, T, dv], dvAll),
        ...perHead.map((d, i) =>
          write(host, x.extraShape[i], sumOverBatch(mixer.extras[i], d, x, i)),
        ),
      ];
    }
    const dq = new Float32Array(batch * heads * T * dk);
    const dkAll = new Float32Array(batch * heads * T * dk);
    const dvAll = new Float32Array(batch * heads * T * dv);
    const dExtras = x.extras.map((e) => new Float64Array(e.length));
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const bh = b * heads + h;
        const g = mixer.backward(
          headView(x, mixer.extras, b, h),
          config,
          dy.subarray(bh * T * dv, (bh + 1) * T * dv),
        );
        dq.set(g.dq, bh * T * dk);
        dkAll.set(g.dk, bh * T * dk);
        dvAll.set(g.dv, bh * T * dv);
        mixer.extras.forEach((e, i) => {
          // A per-head parameter is shared by the batch: its gradient is the sum over sequences.
          if (e.kind === 'perHead') {
            const w = x.extraWidth[i];
            for (let j = 0; j < w; j++) dExtras[i][h * w + j] += g.extras[i][j];
          } else dExtras[i].set(g.extras[i], bh * T);
        });
      }
    }
    return [
      write(host, [batch, heads, T, dk], dq),
      write(host, [batch, heads, T, dk], dkAll),
      write(host, [batch, heads, T, dv], dvAll),
      ...dExtras.map((d, i) => write(host, x.extraShape[i], Float32Array.from(d))),
    ];
  };
}

/**
 * A pool's per-(batch, head) extra gradient → the input's shape: per-head parameters are shared by
 * the batch, so their gradient is the sum over sequences, in the calling thread's order (b outer)
 * and precision (float64), so pool and no pool agree bit for bit.
 */
function sumOverBatch(e: ExtraInput, d: Float32Array, x: BatchedInputs, i: number): Float32Array {
  if (e.kind !== 'perHead') return d;
  const w = x.extraWidth[i];
  const sum = new Float64Array(x.heads * w);
  for (let b = 0; b < x.batch; b++)
    for (let h = 0; h < x.heads; h++)
      for (let j = 0; j < w; j++) sum[h * w + j] += d[(b * x.heads + h) * w + j];
  return Float32Array.from(sum);
}

/**
 * Registers the forward and backward kernels on the host backends and the gradient (idempotent:
 * safe to call before every op; registration is deferred to first use so that importing the
 * package has no side effects).
 */
export function ensureHostMixer<C>(mixer: HostMixer<C>): void {
  const gradName = `${mixer.kernelName}Grad`;
  for (const backendName of HOST_BACKENDS) {
    if (!getKernel(mixer.kernelName, backendName)) {
      registerKernel({
        kernelName: mixer.kernelName,
        backendName,
        kernelFunc: forwardKernel(mixer) as never,
      });
    }
    if (!getKernel(gradName, backendName)) {
      registerKernel({
        kernelName: gradName,
        backendName,
        kernelFunc: backwardKernel(mixer) as never,
      });
    }
  }
  if (getGradient(mixer.kernelName)) return;
  const names = ['q', 'k', 'v', ...mixer.extras.map((e) => e.name)];
  registerGradient({
    kernelName: mixer.kernelName,
    inputsToSave: names,
    gradFunc: (dy, saved, attrs) => {
      // All gradients come from one backward kernel call; each accessor hands out its share. They
      // are computed eagerly because tfjs evaluates each accessor inside its own tidy scope.
      const inputs: Record<string, Tensor> = { dy: dy as Tensor };
      names.forEach((n, i) => {
        inputs[n] = saved[i];
      });
      const grads = engine().runKernel(gradName, inputs, attrs) as Tensor[];
      const map: Record<string, () => Tensor> = {};
      names.forEach((n, i) => {
        map[n] = () => grads[i];
      });
      return map;
    },
  });
}

/** Whether the active backend runs the host kernels (cpu, wasm). */
export function onHostBackend(): boolean {
  return (HOST_BACKENDS as readonly string[]).includes(engine().backendName);
}

/** Runs a registered host mixer (inputs already validated by the op). */
export function runHostMixer<C>(
  mixer: HostMixer<C>,
  inputs: Record<string, Tensor>,
  config: unknown,
): Tensor {
  const backendName = engine().backendName;
  if (!(HOST_BACKENDS as readonly string[]).includes(backendName)) {
    throw new Error(
      `${mixer.kernelName}: no kernel for the '${backendName}' backend; expected one of ${HOST_BACKENDS.join(', ')} (see @ovq/tfjs README, "Backends")`,
    );
  }
  ensureHostMixer(mixer);
  return engine().runKernel(mixer.kernelName, inputs, {
    config: JSON.stringify(config ?? {}),
  }) as Tensor;
}
