// TensorFlow.js entries: @ovq/tfjs ops on the backends that load in Node (cpu, wasm). TensorFlow.js
// itself is @ovq/tfjs's peer, so it is resolved from that package's installation (the same module
// instance its kernels registered with); when it cannot be resolved, every entry is skipped.
// The ops are picked from the typed module (a renamed export is a compile error). Besides the ops,
// `softmax/tfjs-wasm-dense` is plain dense attention written with tfjs ops (matMul, softmax,
// matMul, blocked over queries): the yardstick the project's own softmax must match per FLOP.
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { linearAttention, softmaxAttention } from '@ovq/baselines';
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

type Tensor = { dataSync(): Float32Array; dispose(): void; shape: number[] };
type TfjsOps = typeof import('@ovq/tfjs');
type Tf = {
  tensor(values: Float32Array | number[], shape: number[], dtype?: string): Tensor;
  tidy<T>(f: () => T): T;
  matMul(a: Tensor, b: Tensor, transposeA?: boolean, transposeB?: boolean): Tensor;
  softmax(x: Tensor): Tensor;
  mul(a: Tensor, b: Tensor | number): Tensor;
  add(a: Tensor, b: Tensor): Tensor;
  slice(x: Tensor, begin: number[], size: number[]): Tensor;
  concat(xs: Tensor[], axis: number): Tensor;
  reshape(x: Tensor, shape: number[]): Tensor;
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
  { tf: Tf; ops: TfjsOps; wasmPaths: (dir: string) => void } | string
> {
  let ops: TfjsOps;
  try {
    ops = await import('@ovq/tfjs');
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
  pick: (ops: TfjsOps) => Op;
  config: string;
  call: (op: Op, tf: Tf, q: Tensor, k: Tensor, v: Tensor, dims: Dims) => Tensor;
  reference: (seq: ReturnType<typeof makeSeq>) => Float64Array;
  flops: (T: number, d: Dims) => number;
  stateSize: (T: number, d: Dims) => number;
};

/** Query-block rows of the dense entry: bounds the score matrix at DENSE_BLOCK × T floats. */
const DENSE_BLOCK = 512;

/**
 * Dense causal softmax attention in plain tfjs ops, blocked over queries: for each block of B
 * queries, S = QKᵀ·β over the keys up to the block's end (the diagonal block masked), softmax, S·V.
 */
function denseAttention(tf: Tf, q: Tensor, k: Tensor, v: Tensor, block = DENSE_BLOCK): Tensor {
  const [T, dk] = q.shape;
  const dv = v.shape[1];
  const beta = 1 / Math.sqrt(dk);
  const tri = new Float32Array(block * block);
  for (let r = 0; r < block; r++) for (let c = r + 1; c < block; c++) tri[r * block + c] = -1e30;
  const parts: Tensor[] = [];
  for (let i0 = 0; i0 < T; i0 += block) {
    const b = Math.min(block, T - i0);
    parts.push(
      tf.tidy(() => {
        const qb = tf.slice(q, [i0, 0], [b, dk]);
        const mask = tf.slice(tf.tensor(tri, [block, block]), [0, 0], [b, b]);
        const diag = tf.add(tf.matMul(qb, tf.slice(k, [i0, 0], [b, dk]), false, true), mask);
        const scores =
          i0 === 0
            ? diag
            : tf.concat([tf.matMul(qb, tf.slice(k, [0, 0], [i0, dk]), false, true), diag], 1);
        const p = tf.softmax(tf.mul(scores, beta));
        return tf.matMul(p, tf.slice(v, [0, 0], [i0 + b, dv]));
      }),
    );
  }
  const y = tf.concat(parts, 0);
  for (const p of parts) p.dispose();
  return y;
}

function denseEntry(tf: Tf, use: () => Promise<void>, backend: string): Implementation {
  const make = (T: number, dims: Dims, seed: number) => {
    const s = makeSeq(seed, T, dims);
    return {
      seq: s,
      q: tf.tensor(s.q as Float32Array, [T, dims.keyDim]),
      k: tf.tensor(s.k as Float32Array, [T, dims.keyDim]),
      v: tf.tensor(s.v as Float32Array, [T, dims.valueDim]),
      dy: tf.tensor(makeDOutput(seed, T, dims.valueDim), [T, dims.valueDim]),
    };
  };
  const forward = (x: ReturnType<typeof make>, block?: number) => {
    const y = denseAttention(tf, x.q, x.k, x.v, block);
    const out = y.dataSync();
    y.dispose();
    return out;
  };
  return {
    name: `softmax/tfjs-${backend}-dense`,
    mixer: 'softmax',
    implementation: `tfjs-${backend}-dense`,
    config: `plain tfjs ops: QKᵀ, mask, softmax, PV in ${DENSE_BLOCK}-query blocks, β=1/√dk`,
    hasBackward: true,
    async check() {
      await use();
      const x = make(CHECK_T, CHECK_DIMS, 7);
      // A 64-query block so the check crosses block boundaries.
      const forwardRms = rmsRatio(softmaxAttention(x.seq).output, forward(x, 64));
      for (const t of [x.q, x.k, x.v, x.dy]) t.dispose();
      return {
        ok: forwardRms < TOLERANCE,
        forwardRms,
        backwardRms: null,
        tolerance: TOLERANCE,
        detail: `vs float64 softmaxAttention on T=${CHECK_T} (gradients: tfjs autodiff)`,
      };
    },
    async setup(T, dims) {
      await use();
      const x = make(T, dims, 1);
      return {
        forward: () => forward(x),
        forwardBackward: () => {
          const g = tf.grads((q, k, v) => denseAttention(tf, q, k, v))([x.q, x.k, x.v], x.dy);
          const out = g.map((t) => t.dataSync());
          for (const t of g) t.dispose();
          return out;
        },
        dispose: () => {
          for (const t of [x.q, x.k, x.v, x.dy]) t.dispose();
        },
      };
    },
    flops: (T, d, mode) => modeFlops(softmaxForwardFlops(T, d), mode),
    stateSize: (T, d) => T * (d.keyDim + d.valueDim),
  };
}

/** `only: 'dense'` loads just the dense tfjs-wasm yardstick (the quick suite's). */
export async function tfjsImplementations(only?: 'dense'): Promise<{
  implementations: Implementation[];
  skipped: Skipped[];
}> {
  const implementations: Implementation[] = [];
  const skipped: Skipped[] = [];
  const loaded = await loadTf();
  const c = OVQ_BENCH_CONFIG;
  if (typeof loaded !== 'string') {
    const tf = loaded.tf;
    implementations.push(
      denseEntry(
        tf,
        async () => {
          loaded.wasmPaths('');
          if (!(await tf.setBackend('wasm'))) throw new Error("tf.setBackend('wasm') failed");
          await tf.ready();
        },
        'wasm',
      ),
    );
  } else {
    skipped.push({
      name: 'softmax/tfjs-wasm-dense',
      mixer: 'softmax',
      implementation: 'tfjs-wasm-dense',
      reason: loaded,
    });
  }
  if (only === 'dense') return { implementations, skipped };
  const specs: Spec[] = [
    {
      mixer: 'ovq',
      op: 'ovqAttention',
      pick: (o) => o.ovqAttention as unknown as Op,
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
      pick: (o) => o.softmaxAttention as unknown as Op,
      config: 'causal, β=1/√dk (host kernel)',
      call: (op, _tf, q, k, v) => op(q, k, v, {}),
      reference: (seq) => softmaxAttention(seq).output,
      flops: (T, d) => softmaxForwardFlops(T, d),
      stateSize: (T, d) => T * (d.keyDim + d.valueDim),
    },
    {
      mixer: 'linear',
      op: 'linearAttention',
      pick: (o) => o.linearAttention as unknown as Op,
      config: 'elu+1 features, normalised (host kernel)',
      call: (op, _tf, q, k, v) => op(q, k, v, {}),
      reference: (seq) => linearAttention(seq).output,
      flops: (T, d) => denseStateForwardFlops('linear', T, d),
      stateSize: (_T, d) => d.keyDim * d.valueDim + d.keyDim,
    },
  ];
  for (const backend of BACKENDS) {
    const implementation = `tfjs-${backend}`;
    for (const spec of specs) {
      const name = `${spec.mixer}/${implementation}`;
      if (typeof loaded === 'string') {
        skipped.push({ name, mixer: spec.mixer, implementation, reason: loaded });
        continue;
      }
      const op = spec.pick(loaded.ops);
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
