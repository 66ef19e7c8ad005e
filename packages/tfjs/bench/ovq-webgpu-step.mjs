// `node bench/ovq-webgpu-step.mjs` (after `tsc -p tsconfig.build.json` here and in
// packages/webgpu): one tfjs training step of `ovqAttention` on the webgpu backend — forward, then
// tf.grads for q, k, v, β — counting @ovq/webgpu's dispatches, submits and bind groups
// (`ctx.stats` of the backend device's context) and timing the step (wall clock until the
// gradients are read back, median of OVQ_BENCH_REPEATS after one warm-up).
// Without a GPU the adapter is Dawn on SwiftShader (Vulkan emulated on the CPU) or, with
// OVQ_WEBGPU_ROUTE=opengles, on Mesa llvmpipe: the times say what runs, not how fast a GPU is.
// Env: OVQ_BENCH_T=256,1024 (sequence lengths), OVQ_BENCH_D=32 (dk = dv), OVQ_BENCH_C=32
// (chunk), OVQ_BENCH_N=128 (capacity), OVQ_BENCH_H=4 (heads, batch 1), OVQ_BENCH_REPEATS=3.
import { installNodeNavigatorGpu } from '@ovq/webgpu';
import * as tf from '@tensorflow/tfjs';
import { ovqAttention } from '../dist/index.js';
import { contextFor } from '../dist/kernels/webgpu-bridge.js';

const env = (name, fallback) => process.env[name] ?? fallback;
const LENGTHS = env('OVQ_BENCH_T', '256,1024').split(',').map(Number);
const D = Number(env('OVQ_BENCH_D', 32));
const C = Number(env('OVQ_BENCH_C', 32));
const N = Number(env('OVQ_BENCH_N', 128));
const H = Number(env('OVQ_BENCH_H', 4));
const REPEATS = Number(env('OVQ_BENCH_REPEATS', 3));
const route = env('OVQ_WEBGPU_ROUTE', 'vulkan');

await installNodeNavigatorGpu(
  route === 'opengles' ? { nodeBackend: 'opengles', featureLevel: 'compatibility' } : undefined,
);
await import('@tensorflow/tfjs-backend-webgpu');
if (!(await tf.setBackend('webgpu'))) throw new Error('tf.setBackend("webgpu") failed');
await tf.ready();
const backend = tf.backend();
const ctx = contextFor(backend.device);
const info = backend.adapterInfo ?? {};
console.log(`adapter: ${info.description || info.vendor || info.architecture || route}`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const config = { chunkSize: C, capacity: N };

async function forwardOnly(inputs) {
  const y = tf.tidy(() => ovqAttention(...inputs, config));
  await y.data();
  y.dispose();
}

async function trainingStep(inputs, dy) {
  const gs = tf.tidy(() =>
    tf.grads((q, k, v, b) => tf.sum(tf.mul(ovqAttention(q, k, v, b, config), dy)))(inputs),
  );
  await Promise.all(gs.map((g) => g.data()));
  tf.dispose(gs);
}

/** Dispatches etc. of one call of `run`, and its median wall ms after one warm-up. */
async function measure(run) {
  await run();
  const before = { ...ctx.stats };
  await run();
  const counts = Object.fromEntries(Object.keys(before).map((k) => [k, ctx.stats[k] - before[k]]));
  const xs = [];
  for (let i = 0; i < REPEATS; i++) {
    const t = performance.now();
    await run();
    xs.push(performance.now() - t);
  }
  return { ...counts, ms: median(xs) };
}

console.log(`B1 H${H} dk = dv = ${D}, chunk ${C}, capacity ${N}, median of ${REPEATS}`);
console.log(
  '| T | chunks | fwd dispatches | step dispatches | step / chunk | step submits | step bind groups | fwd ms | step ms | tensors leaked |',
);
console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const T of LENGTHS) {
  const inputs = [
    tf.randomNormal([1, H, T, D], 0, 1, 'float32', 1),
    tf.randomNormal([1, H, T, D], 0, 1, 'float32', 2),
    tf.randomNormal([1, H, T, D], 0, 1, 'float32', 3),
    tf.fill([H], 8),
  ];
  const dy = tf.randomNormal([1, H, T, D], 0, 1, 'float32', 4);
  const f = await measure(() => forwardOnly(inputs));
  const tensorsBefore = tf.memory().numTensors;
  const s = await measure(() => trainingStep(inputs, dy));
  const leaked = tf.memory().numTensors - tensorsBefore;
  const chunks = Math.ceil(T / C);
  console.log(
    `| ${T} | ${chunks} | ${f.dispatches} | ${s.dispatches} | ${(s.dispatches / chunks).toFixed(1)} | ${s.submits} | ${s.bindGroups} | ${f.ms.toFixed(0)} | ${s.ms.toFixed(0)} | ${leaked} |`,
  );
  tf.dispose([...inputs, dy]);
}
