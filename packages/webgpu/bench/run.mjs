// `pnpm --filter @ovq/webgpu bench`: prints the adapter, then for T = 1k…64k the time, tokens/s
// and GFLOP/s of OVQ forward, the OVQ read kernel alone (all of a sequence's read dispatches in
// one command buffer, no absorbs; target ≥ 0.5× the yardstick), OVQ forward+backward, softmax
// attention (forward, forward+backward) and linear attention, and each GFLOP/s as a fraction of
// the yardstick matmul on this adapter.
// Times are GPU timestamps (first to last pass) when the adapter has timestamp-query, else wall
// clock from the first submit to onSubmittedWorkDone (inputs already on the GPU), median of
// OVQ_BENCH_REPEATS runs after one warm-up. Kernels are checked before being timed.
// Env: OVQ_BENCH_T=1024,4096 (sequence lengths), OVQ_BENCH_BH (batch×heads, default 8),
// OVQ_BENCH_BUDGET_S (stop growing T once one run exceeds this, default 30),
// OVQ_WEBGPU_ROUTE=vulkan|opengles|browser-default (Node: Dawn backend; default tries vulkan then opengles).
import { ovqAttentionReference as refAttention } from '@ovq/core';
import { assertClose, randomSeq } from '@ovq/core/testing';
import {
  acquireDevice,
  attentionBackwardGpu,
  attentionForwardGpu,
  createGpuOvqState,
  GpuContext,
  linearAttentionGpu,
  matmulGpu,
  ovqAttention,
  ovqBackwardGpu,
  ovqForwardGpu,
  ovqReadPassGpu,
  prepareHeadlessDawn,
} from '../dist/index.js';
import { linearFlops, ovqFlops, ovqReadFlops, softmaxFlops } from './flops.mjs';

await prepareHeadlessDawn();

const BH = Number(process.env.OVQ_BENCH_BH ?? 8);
const DK = 64;
const DV = 64;
const REPEATS = Number(process.env.OVQ_BENCH_REPEATS ?? 3);
const BUDGET_MS = 1000 * Number(process.env.OVQ_BENCH_BUDGET_S ?? 30);
const LENGTHS = (process.env.OVQ_BENCH_T ?? '1024,2048,4096,8192,16384,32768,65536')
  .split(',')
  .map(Number);
const OVQ = { chunkSize: 64, capacity: 256, beta: 8 };
const LINEAR_CHUNK = 64;

function open(route) {
  if (route === 'opengles')
    return acquireDevice({ nodeBackend: 'opengles', featureLevel: 'compatibility' });
  return acquireDevice({ nodeBackend: route === 'vulkan' ? 'vulkan' : 'default' });
}

/** A real GPU when there is one; without one, llvmpipe (GLES) beats SwiftShader (Vulkan) ~10×. */
async function device() {
  const route = process.env.OVQ_WEBGPU_ROUTE;
  if (route) return open(route);
  let vulkan = null;
  try {
    vulkan = await open('vulkan');
    if (!vulkan.isFallbackAdapter) return vulkan;
  } catch {}
  try {
    const gles = await open('opengles');
    vulkan?.device.destroy();
    return gles;
  } catch (e) {
    if (vulkan) return vulkan;
    throw e;
  }
}

/** Median ms of REPEATS runs after a warm-up: GPU timestamps when available, else wall clock. */
async function time(ctx, fn) {
  fn();
  await ctx.finish();
  const times = [];
  let source = 'gpu';
  for (let i = 0; i < REPEATS; i++) {
    const timed = ctx.startTimer();
    const t0 = performance.now();
    fn();
    await ctx.finish();
    const wall = performance.now() - t0;
    const gpu = timed ? await ctx.stopTimer() : null;
    if (gpu === null) source = 'wall';
    times.push(gpu ?? wall);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)], source };
}

function randomTensor(ctx, shape, seed) {
  const n = shape.reduce((a, b) => a * b, 1);
  const x = randomSeq(seed, n, 1, 1).q;
  return ctx.upload(
    Float32Array.from(x, (v) => 0.5 * v),
    shape,
  );
}

async function check(ctx) {
  // No speed for a wrong kernel: OVQ forward against the reference (replaying its decisions).
  const seq = randomSeq(1, 130, DK, DV);
  const input = {
    q: Float32Array.from(seq.q),
    k: Float32Array.from(seq.k),
    v: Float32Array.from(seq.v),
    batchHeads: 1,
    seqLen: 130,
    keyDim: DK,
    valueDim: DV,
  };
  const gpu = await ovqAttention(ctx, input, OVQ);
  const ref = refAttention(input, OVQ, { replay: gpu.trace[0] });
  assertClose('OVQ forward check', ref.output, gpu.output, 1e-4);
}

const acquired = await device();
const ctx = new GpuContext(acquired.device);
const info = acquired.adapterInfo;
console.log(
  `adapter: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' | ')} (featureLevel ${acquired.featureLevel}, fallback ${acquired.isFallbackAdapter}, timestamp-query ${ctx.caps.timestamps}, subgroups ${ctx.caps.subgroups})`,
);
await check(ctx);
console.log('check: OVQ forward matches @ovq/core (RMS ratio ≤ 1e-4)');

// Yardstick: the largest square matmul that runs within the budget.
let yardstick = 0;
for (const n of [512, 1024, 2048]) {
  const a = randomTensor(ctx, [n, n], 1);
  const b = randomTensor(ctx, [n, n], 2);
  const c = ctx.tensor([n, n]);
  const { ms, source } = await time(ctx, () => matmulGpu(ctx, a, b, c, n, n, n));
  yardstick = Math.max(yardstick, (2 * n ** 3) / (ms * 1e6));
  console.log(
    `yardstick matmul ${n}x${n}x${n}: ${ms.toFixed(1)} ms (${source}), ${((2 * n ** 3) / (ms * 1e6)).toFixed(2)} GFLOP/s`,
  );
  for (const t of [a, b, c]) t.dispose();
  if (ms > BUDGET_MS / 10) break;
}
console.log(
  `BH = ${BH} (batch×heads), dk = dv = ${DK}, OVQ ${JSON.stringify(OVQ)}, linear chunk ${LINEAR_CHUNK}; median of ${REPEATS}`,
);
console.log('| T | op | ms | clock | tokens/s | GFLOP/s | × yardstick |');
console.log('|---|---|---|---|---|---|---|');

const readRatios = [];
for (const T of LENGTHS) {
  const dims = { batchHeads: BH, seqLen: T, keyDim: DK, valueDim: DV };
  const q = randomTensor(ctx, [BH, T, DK], 3);
  const k = randomTensor(ctx, [BH, T, DK], 4);
  const v = randomTensor(ctx, [BH, T, DV], 5);
  const dout = randomTensor(ctx, [BH, T, DV], 6);
  const out = ctx.tensor([BH, T, DV]);
  const lse = ctx.tensor([BH, T]);
  const dq = ctx.tensor([BH, T, DK]);
  const dk = ctx.tensor([BH, T, DK]);
  const dv = ctx.tensor([BH, T, DV]);
  const dscale = ctx.tensor([BH, T]);
  const dbeta = ctx.tensor([BH]);
  const fl = ovqFlops({ seqLen: T, keyDim: DK, valueDim: DV }, OVQ);
  const readFlops = ovqReadFlops({ seqLen: T, keyDim: DK, valueDim: DV }, OVQ);
  const sf = softmaxFlops({ seqLen: T, keyDim: DK, valueDim: DV });
  const lf = linearFlops({ seqLen: T, keyDim: DK, valueDim: DV }, LINEAR_CHUNK);
  let slowest = 0;
  const row = async (op, flops, fn) => {
    const { ms, source } = await time(ctx, fn);
    slowest = Math.max(slowest, ms);
    const gflops = (BH * flops) / (ms * 1e6);
    console.log(
      `| ${T} | ${op} | ${ms.toFixed(1)} | ${source} | ${Math.round((BH * T) / (ms / 1000))} | ${gflops.toFixed(2)} | ${(gflops / yardstick).toFixed(3)} |`,
    );
    return gflops / yardstick;
  };
  let state = null;
  const fresh = () => {
    state?.dispose();
    state = createGpuOvqState(ctx, dims, OVQ);
    return state;
  };
  await row('OVQ forward', fl.forward, () =>
    ctx.disposeWhenDone(ovqForwardGpu(fresh(), { q, k, v, seqLen: T }, out).scope),
  );
  // The read kernel alone: one forward fills the dictionary and keeps its working buffers, then
  // only the read dispatches (same chunk ranges and per-chunk row counts) are timed.
  const readState = fresh();
  const record = ovqForwardGpu(readState, { q, k, v, seqLen: T }, out);
  await ctx.finish();
  readRatios.push(
    await row('OVQ read kernel only', readFlops, () => ovqReadPassGpu(readState, record, out)),
  );
  record.scope.dispose();
  await row('OVQ forward+backward', fl.forward + fl.backward, () =>
    ovqBackwardGpu(fresh(), { q, k, v, seqLen: T }, dout, out, { dq, dk, dv, dbeta }),
  );
  await row('softmax attention forward', sf.forward, () =>
    attentionForwardGpu(ctx, dims, 0.125, { q, k, v, out, lse }),
  );
  await row('softmax attention forward+backward', sf.forward + sf.backward, () => {
    attentionForwardGpu(ctx, dims, 0.125, { q, k, v, out, lse });
    attentionBackwardGpu(ctx, dims, 0.125, { q, k, v, out, lse, dout, dq, dk, dv, dscale });
  });
  await row('linear attention forward', lf.forward, () =>
    linearAttentionGpu(ctx, dims, LINEAR_CHUNK, { q, k, v, out }),
  );
  state?.dispose();
  for (const t of [q, k, v, dout, out, lse, dq, dk, dv, dscale, dbeta]) t.dispose();
  await ctx.checkErrors();
  if (slowest > BUDGET_MS) {
    console.log(`(stopping: one run took ${(slowest / 1000).toFixed(1)} s > OVQ_BENCH_BUDGET_S)`);
    break;
  }
}
if (readRatios.length > 0) {
  const best = Math.max(...readRatios);
  console.log(
    `OVQ read kernel: best ${best.toFixed(3)}× the yardstick's GFLOP/s (target ≥ 0.5: ${best >= 0.5 ? 'met' : 'not met'})`,
  );
}
ctx.dispose();
process.exit(0);
