// `pnpm --filter @ovq/tfjs bench`: every @ovq/tfjs op on each backend (cpu, wasm, webgpu), at
// B1 H4 dk = dv = 64: forward and forward+backward (tf.grads for q, k, v) wall time, median of
// OVQ_BENCH_REPEATS runs after one warm-up, ratios against softmax attention run in the same
// process, and the peak bytes of tensors created during forward+backward above those alive before
// (tf.profile; host kernels' internal scratch arrays are not tensors and are not counted).
// Without a GPU, webgpu is Dawn on SwiftShader (Vulkan emulated on the CPU): its times say what
// runs, not how fast a GPU is.
// Env: OVQ_BENCH_T=256,1024 (sequence lengths), OVQ_BENCH_BACKENDS=cpu,wasm,webgpu,
// OVQ_BENCH_REPEATS=3, OVQ_BENCH_BUDGET_S=60 (skip longer T for an op once one run exceeds it).
import { createRequire } from 'node:module';
import path from 'node:path';
import { installNodeNavigatorGpu } from '@ovq/webgpu';
import * as tf from '@tensorflow/tfjs';
import {
  decayLinearAttention,
  gatedDeltaNet,
  kvmAttention,
  linearAttention,
  ovqAttention,
  softmaxAttention,
  vqAttention,
} from '../dist/index.js';

const LENGTHS = (process.env.OVQ_BENCH_T ?? '256,1024').split(',').map(Number);
const BACKENDS = (process.env.OVQ_BENCH_BACKENDS ?? 'cpu,wasm,webgpu').split(',');
const REPEATS = Number(process.env.OVQ_BENCH_REPEATS ?? 3);
const BUDGET_MS = 1000 * Number(process.env.OVQ_BENCH_BUDGET_S ?? 60);
const [B, H, DK, DV] = [1, 4, 64, 64];

/** Op name → (q, k, v, T) ⇒ output, with its extra inputs made once per T. */
function ops(T) {
  const decay = tf.keep(tf.fill([B, H, T], 0.95));
  const alpha = tf.keep(tf.fill([B, H, T], 0.95));
  const gdnBeta = tf.keep(tf.fill([B, H, T], 0.5));
  const codebook = tf.keep(tf.randomNormal([H, 64, DK], 0, 1, 'float32', 7));
  const beta = tf.keep(tf.fill([H], 8));
  return {
    extras: [decay, alpha, gdnBeta, codebook, beta],
    list: [
      ['softmax (full)', (q, k, v) => softmaxAttention(q, k, v)],
      [
        'OVQ N=256 C=64',
        (q, k, v) => ovqAttention(q, k, v, beta, { chunkSize: 64, capacity: 256 }),
      ],
      ['sliding window W=128', (q, k, v) => softmaxAttention(q, k, v, { window: 128 })],
      ['linear', (q, k, v) => linearAttention(q, k, v)],
      ['decay linear', (q, k, v) => decayLinearAttention(q, k, v, decay)],
      ['gated deltanet', (q, k, v) => gatedDeltaNet(q, k, v, alpha, gdnBeta)],
      [
        'vq S=64 L=64',
        (q, k, v) => vqAttention(q, k, v, codebook, { codebookSize: 64, blockLength: 64 }),
      ],
      [
        'kvm W=128 B=32 budget 256',
        (q, k, v) =>
          kvmAttention(q, k, v, {
            window: 128,
            blockSize: 32,
            beta: 8,
            budget: { kind: 'fixed', rows: 256 },
          }),
      ],
    ],
  };
}

async function startBackend(name) {
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const require = createRequire(import.meta.url);
    wasm.setWasmPaths(`${path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm'))}/`);
  }
  if (name === 'webgpu') {
    await installNodeNavigatorGpu();
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (!(await tf.setBackend(name))) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median wall ms of `run` (which awaits its results) over REPEATS after one warm-up. */
async function time(run) {
  const t0 = performance.now();
  await run();
  const warm = performance.now() - t0;
  if (warm > BUDGET_MS) return { ms: warm, over: true };
  const xs = [];
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    await run();
    xs.push(performance.now() - t);
  }
  return { ms: median(xs), over: false };
}

async function forward(op, q, k, v) {
  const y = tf.tidy(() => op(q, k, v));
  await y.data();
  y.dispose();
}

function grads(op, q, k, v, dy) {
  return tf.grads((a, b, c) => tf.sum(tf.mul(op(a, b, c), dy)))([q, k, v]);
}

async function forwardBackward(op, q, k, v, dy) {
  const gs = tf.tidy(() => grads(op, q, k, v, dy));
  await Promise.all(gs.map((g) => g.data()));
  tf.dispose(gs);
}

const fmt = (x, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : '–');

const rows = [];
for (const backend of BACKENDS) {
  try {
    await startBackend(backend);
  } catch (error) {
    console.log(`${backend}: skipped (${error.message})`);
    continue;
  }
  console.log(`\n## ${backend}${backend === 'webgpu' ? ' (Dawn, Vulkan)' : ''}`);
  console.log('| op | T | fwd ms | fwd+bwd ms | fwd+bwd / softmax | peak MB fwd+bwd |');
  console.log('|---|---:|---:|---:|---:|---:|');
  const over = new Set();
  for (const T of LENGTHS) {
    const q = tf.randomNormal([B, H, T, DK], 0, 1, 'float32', 1);
    const k = tf.randomNormal([B, H, T, DK], 0, 1, 'float32', 2);
    const v = tf.randomNormal([B, H, T, DV], 0, 1, 'float32', 3);
    const dy = tf.randomNormal([B, H, T, DV], 0, 1, 'float32', 4);
    const { extras, list } = ops(T);
    let softmaxMs = Number.NaN;
    for (const [name, op] of list) {
      if (over.has(name)) continue;
      try {
        const f = await time(() => forward(op, q, k, v));
        const fb = await time(() => forwardBackward(op, q, k, v, dy));
        const before = tf.memory().numBytes;
        const profile = await tf.profile(() => tf.tidy(() => grads(op, q, k, v, dy)));
        tf.dispose(profile.result);
        if (f.over || fb.over) over.add(name);
        if (name.startsWith('softmax')) softmaxMs = fb.ms;
        const row = {
          backend,
          op: name,
          T,
          forwardMs: f.ms,
          forwardBackwardMs: fb.ms,
          ratioToSoftmax: fb.ms / softmaxMs,
          peakMB: (profile.peakBytes - before) / 2 ** 20,
        };
        rows.push(row);
        console.log(
          `| ${name} | ${T} | ${fmt(f.ms)} | ${fmt(fb.ms)} | ${fmt(row.ratioToSoftmax, 2)} | ${fmt(row.peakMB, 2)} |`,
        );
      } catch (error) {
        console.log(`| ${name} | ${T} | error: ${String(error.message).slice(0, 120)} | | | |`);
      }
    }
    tf.dispose([q, k, v, dy, ...extras]);
  }
}
if (process.env.OVQ_BENCH_JSON) console.log(JSON.stringify(rows));
