// TensorFlow.js entries: @ovq/tfjs ops on the backends that load in Node (cpu, wasm). TensorFlow.js
// itself is @ovq/tfjs's peer, so it is resolved from that package's installation (the same module
// instance its kernels registered with); when it cannot be resolved, every entry is skipped.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ovqAttentionReference } from '@ovq/core';
import {
  denseStateForwardFlops,
  modeFlops,
  ovqForwardFlops,
  softmaxForwardFlops,
} from './flops.js';
import { makeDOutput, makeSeq, rmsRatio } from './inputs.js';
import { OVQ_BENCH_CONFIG, ovqStateNumbers } from './ovq.js';
import type { CheckResult, Dims, Implementation, Mixer, Skipped } from './types.js';

type Tensor = { dataSync(): Float32Array; dispose(): void };
type Tf = {
  tensor(values: Float32Array | number[], shape: number[], dtype?: string): Tensor;
  grads(f: (...xs: Tensor[]) => Tensor): (xs: Tensor[], dy: Tensor) => Tensor[];
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
};
type Op = (...args: unknown[]) => Tensor;

const BACKENDS = ['cpu', 'wasm'] as const;
const CHECK_DIMS: Dims = { keyDim: 16, valueDim: 12 };
const CHECK_T = 203;
const TOLERANCE = 1e-4;

async function loadTf(): Promise<
  { tf: Tf; ops: Record<string, unknown>; wasmPaths: (dir: string) => void } | string
> {
  let ops: Record<string, unknown>;
  try {
    ops = (await import('@ovq/tfjs')) as Record<string, unknown>;
  } catch (error) {
    return `@ovq/tfjs failed to load: ${String(error).slice(0, 160)}`;
  }
  try {
    const require = createRequire(import.meta.url);
    const fromTfjs = createRequire(require.resolve('@ovq/tfjs/package.json'));
    const load = (name: string) => import(pathToFileURL(fromTfjs.resolve(name)).href);
    const tf = (await load('@tensorflow/tfjs-core')) as Tf & { default?: Tf };
    await load('@tensorflow/tfjs-backend-cpu');
    let wasmPaths: (dir: string) => void = () => {};
    try {
      const wasm = (await load('@tensorflow/tfjs-backend-wasm')) as {
        setWasmPaths(p: string): void;
      };
      const dir = path.dirname(fromTfjs.resolve('@tensorflow/tfjs-backend-wasm'));
      wasmPaths = () => wasm.setWasmPaths(`${dir}${path.sep}`);
    } catch {}
    return { tf: tf.default?.grads ? tf.default : tf, ops, wasmPaths };
  } catch (error) {
    return `TensorFlow.js (peer of @ovq/tfjs) not resolvable: ${String(error).slice(0, 160)}`;
  }
}

type Spec = {
  mixer: Mixer;
  op: string;
  config: string;
  call: (op: Op, tf: Tf, q: Tensor, k: Tensor, v: Tensor, dims: Dims) => Tensor;
  reference: (seq: ReturnType<typeof makeSeq>) => Float64Array;
  flops: (T: number, d: Dims) => number;
  stateSize: (T: number, d: Dims) => number;
};

export async function tfjsImplementations(): Promise<{
  implementations: Implementation[];
  skipped: Skipped[];
}> {
  const implementations: Implementation[] = [];
  const skipped: Skipped[] = [];
  const loaded = await loadTf();
  const baselines = (await import('@ovq/baselines')) as Record<string, unknown>;
  const c = OVQ_BENCH_CONFIG;
  const specs: Spec[] = [
    {
      mixer: 'ovq',
      op: 'ovqAttentionReference',
      config: `N=${c.capacity} C=${c.chunkSize} β=${c.beta} (host kernel)`,
      call: (op, tf, q, k, v) =>
        op(q, k, v, tf.tensor([c.beta], [1]), { capacity: c.capacity, chunkSize: c.chunkSize }),
      reference: (seq) => ovqAttentionReference(seq, c).output,
      flops: (T, d) => ovqForwardFlops(T, d, c),
      stateSize: (_T, d) => ovqStateNumbers(c, d),
    },
    {
      mixer: 'softmax',
      op: 'softmaxAttention',
      config: 'causal, β=1/√dk (host kernel)',
      call: (op, _tf, q, k, v) => op(q, k, v, {}),
      reference: (seq) =>
        (baselines.softmaxAttention as (s: unknown) => { output: Float64Array })(seq).output,
      flops: (T, d) => softmaxForwardFlops(T, d),
      stateSize: (T, d) => T * (d.keyDim + d.valueDim),
    },
    {
      mixer: 'linear',
      op: 'linearAttention',
      config: 'elu+1 features, normalised (host kernel)',
      call: (op, _tf, q, k, v) => op(q, k, v, {}),
      reference: (seq) =>
        (baselines.linearAttention as (s: unknown) => { output: Float64Array })(seq).output,
      flops: (T, d) => denseStateForwardFlops('linear', T, d),
      stateSize: (_T, d) => d.keyDim * d.valueDim + d.keyDim,
    },
  ];
  for (const backend of BACKENDS) {
    const implementation = `tfjs-${backend}`;
    for (const spec of specs) {
      const name = `${spec.mixer}/${implementation}`;
      const op = typeof loaded !== 'string' ? (loaded.ops[spec.op] as Op | undefined) : undefined;
      if (typeof loaded === 'string' || !op) {
        skipped.push({
          name,
          mixer: spec.mixer,
          implementation,
          reason: typeof loaded === 'string' ? loaded : `@ovq/tfjs does not export ${spec.op}`,
        });
        continue;
      }
      const { tf } = loaded;
      const use = async () => {
        if (backend === 'wasm') loaded.wasmPaths('');
        if (!(await tf.setBackend(backend))) throw new Error(`tf.setBackend('${backend}') failed`);
        await tf.ready();
      };
      const tensors = (T: number, dims: Dims, seed: number) => {
        const s = makeSeq(seed, T, dims);
        return {
          seq: s,
          q: tf.tensor(s.q as Float32Array, [1, 1, T, dims.keyDim]),
          k: tf.tensor(s.k as Float32Array, [1, 1, T, dims.keyDim]),
          v: tf.tensor(s.v as Float32Array, [1, 1, T, dims.valueDim]),
          dy: tf.tensor(makeDOutput(seed, T, dims.valueDim), [1, 1, T, dims.valueDim]),
        };
      };
      const forward = (x: ReturnType<typeof tensors>, dims: Dims) => {
        const y = spec.call(op, tf, x.q, x.k, x.v, dims);
        const out = y.dataSync();
        y.dispose();
        return out;
      };
      const backward = (x: ReturnType<typeof tensors>, dims: Dims) => {
        const g = tf.grads((q, k, v) => spec.call(op, tf, q, k, v, dims))([x.q, x.k, x.v], x.dy);
        const out = { dq: g[0].dataSync(), dk: g[1].dataSync(), dv: g[2].dataSync() };
        for (const t of g) t.dispose();
        return out;
      };
      const check = async (): Promise<CheckResult> => {
        await use();
        const x = tensors(CHECK_T, CHECK_DIMS, 7);
        const forwardRms = rmsRatio(spec.reference(x.seq), forward(x, CHECK_DIMS));
        return {
          ok: forwardRms < TOLERANCE,
          forwardRms,
          backwardRms: null,
          tolerance: TOLERANCE,
          detail: `${spec.op} on tf backend '${backend}' vs the float64 reference, T=${CHECK_T} (gradients: @ovq/tfjs's own tests)`,
        };
      };
      implementations.push({
        name,
        mixer: spec.mixer,
        implementation,
        config: spec.config,
        hasBackward: true,
        check,
        async setup(T, dims) {
          await use();
          const x = tensors(T, dims, 1);
          return {
            forward: () => forward(x, dims),
            forwardBackward: () => backward(x, dims),
            dispose: () => {
              for (const t of [x.q, x.k, x.v, x.dy]) t.dispose();
            },
          };
        },
        flops: (T, d, mode) => modeFlops(spec.flops(T, d), mode),
        stateSize: spec.stateSize,
      });
    }
  }
  return { implementations, skipped };
}
