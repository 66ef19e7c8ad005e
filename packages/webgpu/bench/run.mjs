// `pnpm --filter @ovq/webgpu bench`: prints the adapter, then for T = 1k…64k the time, tokens/s
// and GFLOP/s of OVQ forward, the OVQ read kernel alone (all of a sequence's read dispatches in
// one command buffer, no absorbs; target ≥ 0.5× the yardstick), OVQ forward+backward, softmax
// attention (forward, forward+backward) and linear attention, and each GFLOP/s as a fraction of
// the yardstick matmul on this adapter.
// Times are GPU timestamps (first to last pass) when the adapter has timestamp-query, else wall
// clock from the first submit to onSubmittedWorkDone (inputs already on the GPU), median of
// OVQ_BENCH_REPEATS runs after one warm-up. Kernels are checked before being timed.
// Env: OVQ_BENCH_T=1024,4096 (sequence lengths), OVQ_BENCH_BH (batch×heads, default 8),
// OVQ_BENCH_D (dk = dv, default 64), OVQ_BENCH_N (OVQ capacity, default 256),
// OVQ_BENCH_BUDGET_S (an op whose run exceeds this is not run at larger T; T stops growing when
// every op has, default 30), OVQ_BENCH_DECODE=1 (adds an OVQ decode row: ms per one-token step
// after a prefill of T tokens), OVQ_BENCH_MD=file (the table rows also go to this file, written
// after each row, so a run cut short still leaves what it measured),
// OVQ_WEBGPU_ROUTE=vulkan|opengles|browser-default (Node: Dawn backend; default tries vulkan then opengles),
// OVQ_BENCH_OPS=ovq-forward,softmax-forward (a subset of: ovq-forward, ovq-read, ovq-backward,
// softmax-forward, softmax-backward, linear-forward; default all),
// OVQ_BENCH_YARDSTICK=0 (skip the matmul yardstick: × yardstick columns stay empty),
// OVQ_BENCH_VARIANTS=1 (instead of the table: the OVQ forward and read-only pass of every read
// variant this device runs, plain and, with `subgroups`, the subgroup lane merge, each on its own
// GpuContext over the same device, runs alternated, median after a warm-up).

import { appendFileSync, writeFileSync } from 'node:fs';
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
const DK = Number(process.env.OVQ_BENCH_D ?? 64);
const DV = DK;
const DECODE = process.env.OVQ_BENCH_DECODE === '1';
const MD = process.env.OVQ_BENCH_MD;
if (MD) writeFileSync(MD, '');
/** Prints a line and, with OVQ_BENCH_MD, appends it to that file. */
function emit(line) {
  console.log(line);
  if (MD) appendFileSync(MD, `${line}\n`);
}
const REPEATS = Number(process.env.OVQ_BENCH_REPEATS ?? 3);
const BUDGET_MS = 1000 * Number(process.env.OVQ_BENCH_BUDGET_S ?? 30);
const LENGTHS = (process.env.OVQ_BENCH_T ?? '1024,2048,4096,8192,16384,32768,65536')
  .split(',')
  .map(Number);
const OVQ = { chunkSize: 64, capacity: Number(process.env.OVQ_BENCH_N ?? 256), beta: 8 };
const LINEAR_CHUNK = 64;
const OPS = new Set(
  (
    process.env.OVQ_BENCH_OPS ??
    'ovq-forward,ovq-read,ovq-backward,softmax-forward,softmax-backward,linear-forward'
  ).split(','),
);
const YARDSTICK = process.env.OVQ_BENCH_YARDSTICK !== '0';
const VARIANTS = process.env.OVQ_BENCH_VARIANTS === '1';

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
emit(
  `adapter: ${[info.vendor, info.architecture, info.device, info.description].filter(Boolean).join(' | ')} (featureLevel ${acquired.featureLevel}, fallback ${acquired.isFallbackAdapter}, timestamp-query ${ctx.caps.timestamps}, subgroups ${ctx.caps.subgroups}, shader-f16 ${ctx.caps.shaderF16})`,
);
// The subgroup layout probe's verdict (acquireDevice ran it) and the kernels it led to.
const layout = ctx.variant.subgroupLayout;
emit(
  `subgroup kernels: ${ctx.variant.subgroups ? 'on' : `off (${ctx.variant.subgroupsDisabledBecause})`}; layout probe: ${layout ? (layout.ok ? `ok (subgroup size ${layout.subgroupSize}, workgroup ${layout.workgroupSize})` : `failed (${layout.reason})`) : 'not run'}`,
);
await check(ctx);
console.log('check: OVQ forward matches @ovq/core (RMS ratio ≤ 1e-4)');

/** One timed run: GPU timestamps when available, else wall clock to onSubmittedWorkDone. */
async function timeOnce(c, fn) {
  const timed = c.startTimer();
  const t0 = performance.now();
  fn();
  await c.finish();
  const wall = performance.now() - t0;
  const gpu = timed ? await c.stopTimer() : null;
  return { ms: gpu ?? wall, source: gpu === null ? 'wall' : 'gpu' };
}

/** OVQ_BENCH_VARIANTS=1: each read variant of this device, alternated in one process. */
async function compareVariants() {
  // The subgroup variant only where the device has it and its layout probe passed.
  const kinds = [false, ...(ctx.variant.subgroups ? [true] : [])];
  const runs = kinds.map((subgroups) => ({
    name: subgroups ? 'subgroups' : 'plain',
    c: new GpuContext(acquired.device, { subgroups }),
  }));
  for (const r of runs) await check(r.c);
  emit(
    `read variants: ${runs.map((r) => r.name).join(', ')} (no shader-f16 variant is built); BH = ${BH}, dk = dv = ${DK}, OVQ ${JSON.stringify(OVQ)}; runs alternated, median of ${REPEATS} after a warm-up; each variant checked against @ovq/core first`,
  );
  emit('');
  emit(`| T | op | ${runs.map((r) => `${r.name} ms`).join(' | ')} | clock | plain / variant |`);
  emit(`|---|---|${runs.map(() => '---|').join('')}---|---|`);
  for (const T of LENGTHS) {
    const dims = { batchHeads: BH, seqLen: T, keyDim: DK, valueDim: DV };
    const jobs = runs.map(({ c }) => {
      const t = {
        q: randomTensor(c, [BH, T, DK], 3),
        k: randomTensor(c, [BH, T, DK], 4),
        v: randomTensor(c, [BH, T, DV], 5),
        out: c.tensor([BH, T, DV]),
      };
      let state = null;
      const fresh = () => {
        state?.dispose();
        state = createGpuOvqState(c, dims, OVQ);
        return state;
      };
      const forward = () => {
        const record = ovqForwardGpu(fresh(), { q: t.q, k: t.k, v: t.v, seqLen: T }, t.out);
        c.disposeWhenDone(record.scope);
      };
      return { c, t, fresh, forward, dispose: () => state?.dispose() };
    });
    for (const op of ['OVQ forward', 'OVQ read kernel only']) {
      const fns = [];
      const records = [];
      for (const j of jobs) {
        if (op === 'OVQ forward') fns.push(j.forward);
        else {
          const st = j.fresh();
          const record = ovqForwardGpu(st, { q: j.t.q, k: j.t.k, v: j.t.v, seqLen: T }, j.t.out);
          await j.c.finish();
          records.push(record);
          fns.push(() => ovqReadPassGpu(st, record, j.t.out));
        }
      }
      const times = jobs.map(() => []);
      let source = 'gpu';
      for (let i = 0; i <= REPEATS; i++) {
        for (let v = 0; v < jobs.length; v++) {
          const r = await timeOnce(jobs[v].c, fns[v]);
          if (r.source === 'wall') source = 'wall';
          if (i > 0) times[v].push(r.ms); // run 0 is the warm-up
        }
      }
      const med = times.map((x) => x.sort((a, b) => a - b)[Math.floor(x.length / 2)]);
      const ratio = med.length > 1 ? (med[0] / med[1]).toFixed(2) : '';
      emit(`| ${T} | ${op} | ${med.map((m) => m.toFixed(1)).join(' | ')} | ${source} | ${ratio} |`);
      for (const r of records) r.scope.dispose();
    }
    for (const j of jobs) {
      j.dispose();
      for (const x of Object.values(j.t)) x.dispose();
      await j.c.checkErrors();
    }
  }
  for (const r of runs) r.c.dispose();
}
if (VARIANTS) {
  await compareVariants();
  ctx.dispose();
  process.exit(0);
}

// Yardstick: the largest square matmul that runs within the budget.
let yardstick = 0;
for (const n of YARDSTICK ? [512, 1024, 2048] : []) {
  const a = randomTensor(ctx, [n, n], 1);
  const b = randomTensor(ctx, [n, n], 2);
  const c = ctx.tensor([n, n]);
  const { ms, source } = await time(ctx, () => matmulGpu(ctx, a, b, c, n, n, n));
  yardstick = Math.max(yardstick, (2 * n ** 3) / (ms * 1e6));
  emit(
    `yardstick matmul ${n}x${n}x${n}: ${ms.toFixed(1)} ms (${source}), ${((2 * n ** 3) / (ms * 1e6)).toFixed(2)} GFLOP/s`,
  );
  for (const t of [a, b, c]) t.dispose();
  if (ms > BUDGET_MS / 10) break;
}
emit(
  `BH = ${BH} (batch×heads), dk = dv = ${DK}, OVQ ${JSON.stringify(OVQ)}, linear chunk ${LINEAR_CHUNK}; median of ${REPEATS}`,
);
emit('');
emit('| T | op | ms | clock | tokens/s | GFLOP/s | × yardstick |');
emit('|---|---|---|---|---|---|---|');
/** Ops whose run exceeded the budget: not run again at larger T. */
const overBudget = new Map();

const readRatios = [];
/** Lines printed after the table: dispatch counts and OVQ-vs-softmax ratios per T. */
const summary = [];
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
  const row = async (key, op, flops, fn) => {
    if (!OPS.has(key)) return null;
    if (overBudget.has(op)) {
      emit(`| ${T} | ${op} | not run (over budget at T = ${overBudget.get(op)}) | | | | |`);
      return null;
    }
    const { ms, source } = await time(ctx, fn);
    if (ms > BUDGET_MS) overBudget.set(op, T);
    const gflops = (BH * flops) / (ms * 1e6);
    const vsYard = yardstick > 0 ? (gflops / yardstick).toFixed(3) : '';
    emit(
      `| ${T} | ${op} | ${ms.toFixed(1)} | ${source} | ${Math.round((BH * T) / (ms / 1000))} | ${gflops.toFixed(2)} | ${vsYard} |`,
    );
    return { ms, ratio: yardstick > 0 ? gflops / yardstick : null };
  };
  let state = null;
  const fresh = () => {
    state?.dispose();
    state = createGpuOvqState(ctx, dims, OVQ);
    return state;
  };
  let dispatchStats = null;
  const ovqFwd = await row('ovq-forward', 'OVQ forward', fl.forward, () => {
    const record = ovqForwardGpu(fresh(), { q, k, v, seqLen: T }, out);
    dispatchStats = record.dispatches;
    ctx.disposeWhenDone(record.scope);
  });
  if (OPS.has('ovq-read')) {
    // The read kernel alone: one forward fills the dictionary and keeps its working buffers, then
    // only the read dispatches (same chunk ranges and per-chunk row counts) are timed.
    const readState = fresh();
    const record = ovqForwardGpu(readState, { q, k, v, seqLen: T }, out);
    await ctx.finish();
    const read = await row('ovq-read', 'OVQ read kernel only', readFlops, () =>
      ovqReadPassGpu(readState, record, out),
    );
    if (read?.ratio != null) readRatios.push(read.ratio);
    record.scope.dispose();
  }
  await row('ovq-backward', 'OVQ forward+backward', fl.forward + fl.backward, () =>
    ovqBackwardGpu(fresh(), { q, k, v, seqLen: T }, dout, out, { dq, dk, dv, dbeta }),
  );
  const softFwd = await row('softmax-forward', 'softmax attention forward', sf.forward, () =>
    attentionForwardGpu(ctx, dims, 0.125, { q, k, v, out, lse }),
  );
  await row(
    'softmax-backward',
    'softmax attention forward+backward',
    sf.forward + sf.backward,
    () => {
      attentionForwardGpu(ctx, dims, 0.125, { q, k, v, out, lse });
      attentionBackwardGpu(ctx, dims, 0.125, { q, k, v, out, lse, dout, dq, dk, dv, dscale });
    },
  );
  await row('linear-forward', 'linear attention forward', lf.forward, () =>
    linearAttentionGpu(ctx, dims, LINEAR_CHUNK, { q, k, v, out }),
  );
  if (dispatchStats) {
    const d = dispatchStats;
    summary.push(
      `T = ${T}: OVQ forward ${d.total} dispatches for ${d.chunks} chunks (${d.perChunk.toFixed(2)} per chunk, target ≤ 3), ${d.bindGroups} bind groups created`,
    );
  }
  if (ovqFwd && softFwd) {
    summary.push(
      `T = ${T}: OVQ forward ${(softFwd.ms / ovqFwd.ms).toFixed(1)}× faster than softmax attention forward (${ovqFwd.ms.toFixed(1)} vs ${softFwd.ms.toFixed(1)} ms)`,
    );
  }
  if (DECODE && !overBudget.has('OVQ decode step')) {
    // Decode: after a prefill of T tokens, one-token steps (GPU level, inputs already on the GPU;
    // every 64th step also absorbs). ms is per step for all BH heads, median of the step times.
    const decode = fresh();
    ovqForwardGpu(decode, { q, k, v, seqLen: T }, out).scope.dispose();
    const q1 = randomTensor(ctx, [BH, 1, DK], 7);
    const k1 = randomTensor(ctx, [BH, 1, DK], 8);
    const v1 = randomTensor(ctx, [BH, 1, DV], 9);
    const o1 = ctx.tensor([BH, 1, DV]);
    await ctx.finish();
    const steps = [];
    for (let i = 0; i < 64; i++) {
      const t0 = performance.now();
      ctx.disposeWhenDone(ovqForwardGpu(decode, { q: q1, k: k1, v: v1, seqLen: 1 }, o1).scope);
      await ctx.finish();
      steps.push(performance.now() - t0);
    }
    steps.sort((a, b) => a - b);
    const ms = steps[32];
    if (ms * 64 > BUDGET_MS) overBudget.set('OVQ decode step', T);
    emit(
      `| ${T} | OVQ decode step (1 token × ${BH} heads, ${decode.size} rows) | ${ms.toFixed(3)} | wall | ${Math.round(BH / (ms / 1000))} | | |`,
    );
    for (const t of [q1, k1, v1, o1]) t.dispose();
  }
  state?.dispose();
  for (const t of [q, k, v, dout, out, lse, dq, dk, dv, dscale, dbeta]) t.dispose();
  await ctx.checkErrors();
  if (overBudget.size >= OPS.size + (DECODE ? 1 : 0)) {
    emit(`(stopping: every op took more than OVQ_BENCH_BUDGET_S = ${BUDGET_MS / 1000} s)`);
    break;
  }
}
if (summary.length > 0) emit('');
for (const line of summary) emit(line);
if (readRatios.length > 0) {
  const best = Math.max(...readRatios);
  emit(
    `OVQ read kernel: best ${best.toFixed(3)}× the yardstick's GFLOP/s (target ≥ 0.5: ${best >= 0.5 ? 'met' : 'not met'})`,
  );
}
ctx.dispose();
process.exit(0);
