// Benchmark of the chunked Float32 path (not a test): `pnpm --filter @ovq/core bench`.
// 1. Checks the chunked forward and backward against the float64 reference on a small case; a
//    wrong kernel gets no numbers. 2. For each T, a fresh child process times forward and
//    forward+backward (median and p20–p80 of repeats after warm-up), and two more fresh children
//    measure peak memory: maxRSS after one run minus maxRSS once inputs, outputs and gradients
//    are allocated and touched (so it includes workspace, tape, trace, JIT code and V8 heap).
// GFLOP/s use the FLOP model in src/chunked/flops.ts. Runs on the built dist/ (Node cannot run .ts).
// 3. Yardstick: tfjs-wasm's single-thread 1024³ matMul GFLOP/s and OVQ's forward / forward+backward
//    GFLOP/s with the WASM and the JS kernels, all in one process (ratios are what count on a
//    shared machine). 4. Both cores: ovqAttentionBatched at B×H = 8, T = 4096 on 1- and 2-worker
//    pools, interleaved repeats. 5. Memory flat in T: 64k tokens streamed in 1k pieces.
// 6. Linear time: forward µs/token at T = 4k, 16k, 64k interleaved in one process (fresh
//    children per T differ in how far the JIT and WASM tiering got).
// Sections: OVQ_BENCH_SECTIONS=table,linear,yardstick,pool,memory (default: all).
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { BackwardScratch } from '../dist/chunked/backward.js';
import { createTape, rowsNeeded } from '../dist/chunked/forward.js';
import { HeadWorkspace } from '../dist/chunked/head.js';
import { chunkedFlops, ovqAttention, ovqAttentionBackward } from '../dist/chunked/index.js';
import { ReadScratch } from '../dist/chunked/read.js';
import {
  createOvqStream,
  createOvqWorkerPool,
  ovqAttentionBatched,
  ovqAttentionReference,
  ovqAttentionReferenceBackward,
  ovqKernels,
  resolveOvqConfig,
  setOvqKernels,
} from '../dist/index.js';
import { assertClose, createRng } from '../dist/testing/index.js';

const D = 64;
const CONFIG = { chunkSize: 64, capacity: 1024, beta: 8 };
const LENGTHS = (process.env.OVQ_BENCH_LENGTHS ?? '1024,4096,16384,65536').split(',').map(Number);
const SELF = fileURLToPath(import.meta.url);
const SECTIONS = (process.env.OVQ_BENCH_SECTIONS ?? 'table,linear,yardstick,pool,memory').split(
  ',',
);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Standard-normal Float32 inputs written in place (no float64 temporaries to inflate the peak). */
function randomInputs(seed, T) {
  const rng = createRng(seed);
  const fill = (n) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i += 2) {
      const r = Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-300)));
      const th = 2 * Math.PI * rng();
      a[i] = r * Math.cos(th);
      if (i + 1 < n) a[i + 1] = r * Math.sin(th);
    }
    return a;
  };
  return {
    q: fill(T * D),
    k: fill(T * D),
    v: fill(T * D),
    dOutput: fill(T * D),
    seqLen: T,
    keyDim: D,
    valueDim: D,
  };
}

function quantile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

/**
 * Child: times forward and (unless `forwardOnly`) forward+backward at length T. Each repeat
 * records wall time and this process's CPU time (run with --single-threaded, so that is the one
 * JS thread: what the kernel costs on one core, whatever else is running on the machine).
 */
function childTime(T, config, forwardOnly) {
  const seq = randomInputs(T, T);
  const out = new Float32Array(T * D);
  const grads = {
    dq: new Float32Array(T * D),
    dk: new Float32Array(T * D),
    dv: new Float32Array(T * D),
  };
  // Warm-up runs use at most 4k tokens: the JIT is as warm and 64k runs stay affordable.
  const warmSeq = T > 4096 ? randomInputs(T + 1, 4096) : seq;
  const [warm, reps] = T <= 4096 ? [2, 7] : T <= 16384 ? [2, 5] : [2, 3];
  const samples = { fwdWall: [], fwdCpu: [], bothWall: [], bothCpu: [] };
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  // No gc() between repeats: a forced (memory-reducing) GC makes V8 drop compiled code, and the
  // next call paid ~50 ms of recompilation — a fixed cost per call that made short T look slow.
  globalThis.gc?.();
  for (let r = 0; r < warm + reps; r++) {
    const input = r < warm ? warmSeq : seq;
    const o = r < warm ? undefined : { out };
    const g = r < warm ? undefined : { out: grads };
    const c0 = cpu();
    const t0 = performance.now();
    ovqAttention(input, config, o);
    const t1 = performance.now();
    const c1 = cpu();
    if (!forwardOnly) ovqAttentionBackward(input, config, input.dOutput, g);
    const t2 = performance.now();
    const c2 = cpu();
    if (r >= warm) {
      samples.fwdWall.push((t1 - t0) / 1e3);
      samples.fwdCpu.push(c1 - c0);
      samples.bothWall.push((t2 - t0) / 1e3);
      samples.bothCpu.push(c2 - c0);
    }
  }
  const stats = (s) => {
    s.sort((x, y) => x - y);
    return { median: quantile(s, 0.5), p20: quantile(s, 0.2), p80: quantile(s, 0.8) };
  };
  return {
    T,
    reps,
    fwd: stats(samples.fwdCpu),
    fwdWall: stats(samples.fwdWall),
    both: stats(samples.bothCpu),
    bothWall: stats(samples.bothWall),
  };
}

/**
 * Child: peak RSS added by one forward, then by the backward after it, over a fresh process that
 * already holds the inputs, outputs and gradient buffers (allocated and touched).
 */
function childMemory(T) {
  const seq = randomInputs(T, T);
  const out = new Float32Array(T * D).fill(0);
  const grads = {
    dq: new Float32Array(T * D).fill(0),
    dk: new Float32Array(T * D).fill(0),
    dv: new Float32Array(T * D).fill(0),
  };
  globalThis.gc?.();
  const peak = () => process.resourceUsage().maxRSS * 1024;
  const before = peak();
  ovqAttention(seq, CONFIG, { out });
  const afterForward = peak();
  ovqAttentionBackward(seq, CONFIG, seq.dOutput, { out: grads });
  const afterBoth = peak();
  return { T, fwd: afterForward - before, both: afterBoth - before };
}

/** Bytes the chunked path allocates explicitly for one head (workspace, scratch, tape). */
function explicitBytes(T) {
  const cfg = resolveOvqConfig(CONFIG);
  const rows = rowsNeeded(cfg, T);
  const ws = new HeadWorkspace(D, D, cfg, rows).bytes;
  const fwd = new ReadScratch(cfg.chunkSize, rows, D, D).bytes;
  const bwd = new BackwardScratch(cfg.chunkSize, rows, D, D).bytes;
  const tape = createTape(Math.floor(T / cfg.chunkSize), cfg.chunkSize);
  return { ws, fwd, bwd, tape: tape.codes.byteLength + tape.sizeBefore.byteLength };
}

function checkCorrectness() {
  const T = 300;
  const seq = randomInputs(7, T);
  const config = { ...CONFIG, capacity: 48 };
  // No replay: both paths decide for themselves, and must decide alike (the fast path settles
  // near-ties in float64; random keys have no genuine ties).
  const sameTrace = (name, a, b) => {
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      throw new Error(`bench check: ${name} decisions differ from the reference's`);
    }
  };
  const chunked = ovqAttention(seq, config);
  const ref = ovqAttentionReference(seq, config);
  sameTrace('forward', ref.trace, chunked.trace);
  assertClose('bench check: output', ref.output, chunked.output, 1e-5);
  const g = ovqAttentionBackward(seq, config, seq.dOutput);
  const r = ovqAttentionReferenceBackward(seq, config, seq.dOutput);
  sameTrace('backward', r.trace, g.trace);
  for (const name of ['dq', 'dk', 'dv'])
    assertClose(`bench check: ${name}`, r[name], g[name], 1e-5);
  assertClose('bench check: dbeta', [r.dbeta], [g.dbeta], 1e-5);
}

function runChild(args, flags = ['--expose-gc', '--single-threaded']) {
  const text = execFileSync(process.execPath, [...flags, SELF, ...args], { encoding: 'utf8' });
  return JSON.parse(text.trim().split('\n').pop());
}

const fmt = (x, digits = 2) => x.toFixed(digits);
const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);

function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--time') {
    const fixed = args[2] === 'fixed';
    const config = fixed ? { ...CONFIG, growth: 'fixed' } : CONFIG;
    return console.log(JSON.stringify(childTime(Number(args[1]), config, fixed)));
  }
  if (args[0] === '--memory') {
    return console.log(JSON.stringify(childMemory(Number(args[1]))));
  }
  if (args[0] === '--yardstick')
    return childYardstick().then((r) => console.log(JSON.stringify(r)));
  if (args[0] === '--pool') return childPool().then((r) => console.log(JSON.stringify(r)));
  if (args[0] === '--stream-memory') return console.log(JSON.stringify(childStreamMemory()));
  if (args[0] === '--linear') return console.log(JSON.stringify(childLinear(args[1])));
  try {
    checkCorrectness();
  } catch (error) {
    console.error(
      `chunked path disagrees with the reference; no numbers reported.\n${error.message}`,
    );
    process.exit(1);
  }
  console.log(
    'correctness: chunked forward and backward match the float64 reference (T=300, d=64, C=64, N=48; RMS ratio ≤ 1e-5)',
  );
  console.log(
    `shape: one head, d=${D}, capacity ${CONFIG.capacity}, C=${CONFIG.chunkSize}, beta ${CONFIG.beta}, saturating growth; node ${process.version}, ${os.cpus()[0].model} × ${os.cpus().length}`,
  );
  console.log(
    `load average at start: ${load()} (other work on the machine inflates wall time, not CPU time)`,
  );
  console.log('');
  if (SECTIONS.includes('table')) table();
  if (SECTIONS.includes('yardstick')) yardstick();
  if (SECTIONS.includes('pool')) poolSection();
  if (SECTIONS.includes('memory')) streamMemorySection();
  if (SECTIONS.includes('linear')) linearSection();
  console.log(`load average at end: ${load()}`);
}

const load = () =>
  os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');

function table() {
  console.log(`kernels: ${ovqKernels()} (OVQ_KERNELS=js forces the JS kernels)`);
  console.log(
    '| T | rows | fwd µs/tok CPU (p20–p80) | fwd tok/s | fwd GFLOP/s | fwd µs/tok wall | fwd+bwd µs/tok CPU (p20–p80) | fwd+bwd tok/s | fwd+bwd GFLOP/s | fwd+bwd µs/tok wall | peak extra MB fwd / fwd+bwd | explicit MB ws+scratch / tape |',
  );
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const rows = [];
  const us = (s, T) => fmt((s / T) * 1e6);
  for (const T of LENGTHS) {
    const time = runChild(['--time', String(T)]);
    const mem = runChild(['--memory', String(T)]);
    const flops = chunkedFlops({ seqLen: T, keyDim: D, valueDim: D }, CONFIG);
    const ex = explicitBytes(T);
    const f = time.fwd;
    const b = time.both;
    const total = flops.forward + flops.backward;
    rows.push({
      T,
      fUs: f.median / T,
      bUs: b.median / T,
      fPerFlop: f.median / flops.forward,
      bPerFlop: b.median / total,
      gf: flops.forward / f.median / 1e9,
      mem,
    });
    console.log(
      `| ${T} | ${flops.finalSize} | ${us(f.median, T)} (${us(f.p20, T)}–${us(f.p80, T)}) | ${fmt(T / f.median, 0)} | ${fmt(flops.forward / f.median / 1e9)} | ${us(time.fwdWall.median, T)} | ${us(b.median, T)} (${us(b.p20, T)}–${us(b.p80, T)}) | ${fmt(T / b.median, 0)} | ${fmt(total / b.median / 1e9)} | ${us(time.bothWall.median, T)} | ${mb(mem.fwd)} / ${mb(mem.both)} | ${mb(ex.ws + ex.bwd)} / ${mb(ex.tape)} |`,
    );
  }
  console.log('');
  const long = rows.filter((r) => r.T >= 4096);
  const spread = (key) =>
    Math.max(...long.map((r) => r[key])) / Math.min(...long.map((r) => r[key]));
  const minGf = Math.min(...rows.map((r) => r.gf));
  const memSpread = (key) =>
    Math.max(...long.map((r) => r.mem[key])) - Math.min(...long.map((r) => r.mem[key]));
  const verdict = (ok) => (ok ? 'met' : 'MISSED');
  const flopsPerToken = (T, growth) =>
    chunkedFlops({ seqLen: T, keyDim: D, valueDim: D }, { ...CONFIG, growth }).forward / T;
  const flopRatio = flopsPerToken(65536, 'saturating') / flopsPerToken(4096, 'saturating');
  console.log('targets (CPU-time medians):');
  console.log(
    `- time per token, max/min over T = 4k…64k: forward ${fmt(spread('fUs'))}x, forward+backward ${fmt(spread('bUs'))}x (≤ 1.3x: ${verdict(spread('fUs') <= 1.3 && spread('bUs') <= 1.3)})`,
  );
  console.log(
    `  the saturating schedule alone makes a 64k token cost ${fmt(flopRatio)}x the FLOPs of a 4k token (mean rows read ${fmt(meanRows(65536), 0)} vs ${fmt(meanRows(4096), 0)}); time per FLOP, max/min over 4k…64k: forward ${fmt(spread('fPerFlop'))}x, forward+backward ${fmt(spread('bPerFlop'))}x`,
  );
  const fixed = [4096, 16384, 65536].map((T) => {
    const t = runChild(['--time', String(T), 'fixed']);
    return { T, us: (t.fwd.median / T) * 1e6 };
  });
  const fixedSpread = Math.max(...fixed.map((r) => r.us)) / Math.min(...fixed.map((r) => r.us));
  console.log(
    `  growth 'fixed' (n = N from token 1024 on), forward µs/token CPU: ${fixed.map((r) => `${r.T}: ${fmt(r.us)}`).join(', ')} → max/min ${fmt(fixedSpread)}x (≤ 1.3x: ${verdict(fixedSpread <= 1.3)})`,
  );
  console.log(
    `- forward GFLOP/s, worst T: ${fmt(minGf)} (≥ 1.5 on one core: ${verdict(minGf >= 1.5)})`,
  );
  console.log(
    `- peak extra memory, max − min over T = 4k…64k: forward ${mb(memSpread('fwd'))} MB, forward+backward ${mb(memSpread('both'))} MB (inputs alone at 64k: ${mb(3 * 65536 * D * 4)} MB)`,
  );
  console.log('');
  console.log(
    "CPU = this process's CPU time under --single-threaded (one JS thread: cost on one core); wall = elapsed time.",
  );
  console.log(
    'GFLOP/s use the FLOP model of src/chunked/flops.ts. Medians of 7 / 5 / 3 repeats (T ≤ 4k / 16k / 64k) after 2 warm-up runs of min(T, 4k) tokens.',
  );
  console.log(
    'peak extra = maxRSS after one forward (then after the backward too) − maxRSS with inputs/outputs/gradients allocated and touched, in a fresh process (no warm-up: includes JIT code and V8 heap growth).',
  );
  console.log(
    'explicit = typed arrays the chunked path allocates: workspace + backward scratch (constant in T) / absorb tape (4 bytes per token: the only O(T) part, besides the returned trace).',
  );
}

/**
 * Child: tfjs-wasm's single-thread 1024³ matMul GFLOP/s, then OVQ forward and forward+backward
 * GFLOP/s (T = 4096, d = 64) with the WASM and the JS kernels, medians after warm-up, one process.
 */
async function childYardstick() {
  const tf = await import('@tensorflow/tfjs-core');
  await import('@tensorflow/tfjs-backend-wasm');
  await tf.setBackend('wasm');
  await tf.ready();
  // CPU time of this process (run with --single-threaded: the one JS thread, where tfjs-wasm's
  // single-thread matMul runs too), so other jobs on the machine do not skew the ratio.
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const time = (f, reps) => {
    f();
    const s = [];
    for (let r = 0; r < reps; r++) {
      const c0 = cpu();
      f();
      s.push(cpu() - c0);
    }
    return median(s);
  };
  const a = tf.randomNormal([1024, 1024]);
  const b = tf.randomNormal([1024, 1024]);
  const matmul = () => tf.matMul(a, b).dataSync();
  const tfGflops = () => (2 * 1024 ** 3) / time(matmul, 7) / 1e9;
  const T = 4096;
  const seq = randomInputs(3, T);
  const flops = chunkedFlops({ seqLen: T, keyDim: D, valueDim: D }, CONFIG);
  const ovq = {};
  const yard = [tfGflops()];
  // Warm-up beyond the first calls: V8 tiers WASM and JS up while they run (more slowly under
  // --single-threaded), so each kernel set first runs a 16k sequence forward and backward.
  const warm = randomInputs(8, 16384);
  for (const kernels of ['wasm', 'js']) {
    setOvqKernels(kernels);
    ovqAttention(warm, CONFIG);
    ovqAttentionBackward(warm, CONFIG, warm.dOutput);
    const fwd = time(() => ovqAttention(seq, CONFIG), 5);
    const both = time(() => {
      ovqAttention(seq, CONFIG);
      ovqAttentionBackward(seq, CONFIG, seq.dOutput);
    }, 3);
    ovq[kernels] = {
      fwd: flops.forward / fwd / 1e9,
      both: (flops.forward + flops.backward) / both / 1e9,
    };
    yard.push(tfGflops());
  }
  // The long-sequence forward (the dictionary has reached N; WASM kernels only).
  setOvqKernels('wasm');
  const long = randomInputs(4, 65536);
  const longFlops = chunkedFlops({ seqLen: 65536, keyDim: D, valueDim: D }, CONFIG).forward;
  ovq.wasm.fwd64k = longFlops / time(() => ovqAttention(long, CONFIG), 3) / 1e9;
  yard.push(tfGflops());
  setOvqKernels('auto');
  return {
    tfGflops: median(yard),
    tfSamples: yard,
    tfThreads: tf.env().getBool('WASM_HAS_MULTITHREAD_SUPPORT') ? 'multi' : 'single',
    ovq,
  };
}

function yardstick() {
  const r = runChild(['--yardstick'], ['--expose-gc', '--single-threaded']);
  const pct = (x) => `${fmt((100 * x) / r.tfGflops, 0)}%`;
  console.log('');
  console.log(
    `yardstick (one process): tfjs-wasm ${r.tfThreads}-thread 1024³ matMul ${fmt(r.tfGflops, 1)} GFLOP/s (median of 4 measurements: ${r.tfSamples.map((x) => fmt(x, 1)).join(', ')})`,
  );
  console.log('| kernels | fwd GFLOP/s | fwd / tfjs | fwd+bwd GFLOP/s | fwd+bwd / tfjs |');
  console.log('|---|---:|---:|---:|---:|');
  for (const k of ['wasm', 'js']) {
    const o = r.ovq[k];
    console.log(`| ${k} | ${fmt(o.fwd)} | ${pct(o.fwd)} | ${fmt(o.both)} | ${pct(o.both)} |`);
  }
  const w = r.ovq.wasm;
  console.log(`| wasm, T = 65536 | ${fmt(w.fwd64k)} | ${pct(w.fwd64k)} | | |`);
  console.log(
    `targets: forward ≥ 50% (${pct(w.fwd)}: ${w.fwd >= 0.5 * r.tfGflops ? 'met' : 'MISSED'}), forward+backward ≥ 35% (${pct(w.both)}: ${w.both >= 0.35 * r.tfGflops ? 'met' : 'MISSED'}); T = 4096, d = 64, N = 1024, C = 64, CPU-time medians`,
  );
}

/**
 * Child: ovqAttentionBatched at B×H = 8, T = 4096, d = 64 on a 1-worker and a 2-worker pool (the
 * same pool machinery; only the thread count differs), interleaved, 2 warm-up calls each, then
 * POOL_REPEATS timed calls each.
 */
const POOL_REPEATS = 9;
async function childPool() {
  const T = 4096;
  const BH = 8;
  const rng = createRng(5);
  const fill = (n) => Float32Array.from({ length: n }, () => rng() - 0.5);
  const share = (n) => {
    const a = new Float32Array(new SharedArrayBuffer(n * 4));
    a.set(fill(n));
    return a;
  };
  const x = {
    q: share(BH * T * D),
    k: share(BH * T * D),
    v: share(BH * T * D),
    batch: 2,
    heads: 4,
    seqLen: T,
    keyDim: D,
    valueDim: D,
  };
  const config = { ...CONFIG, beta: Float32Array.from([6, 7, 8, 9]) };
  const out = new Float32Array(new SharedArrayBuffer(BH * T * D * 4));
  const pools = {
    1: await createOvqWorkerPool({ threads: 1 }),
    2: await createOvqWorkerPool({ threads: 2 }),
  };
  const samples = { 1: [], 2: [] };
  // CPU seconds of the whole process (workers included) per call, and per wall second: how many
  // cores the call got, which on a shared machine bounds the speed-up.
  const cpu = { 1: [], 2: [] };
  const busy = { 1: [], 2: [] };
  for (let r = 0; r < 2 + POOL_REPEATS; r++) {
    for (const n of [1, 2]) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      ovqAttentionBatched(x, config, { pool: pools[n], out });
      const wall = (performance.now() - t0) / 1e3;
      const c = process.cpuUsage(c0);
      if (r >= 2) {
        samples[n].push(wall);
        cpu[n].push((c.user + c.system) / 1e6);
        busy[n].push((c.user + c.system) / 1e6 / wall);
      }
    }
  }
  await Promise.all(Object.values(pools).map((p) => p.dispose()));
  // Each repeat ran 1 then 2 workers back to back: the ratio of that pair.
  const pairs = samples[1].map((one, i) => one / samples[2][i]);
  return {
    one: median(samples[1]),
    two: median(samples[2]),
    pairs,
    cpu: { 1: median(cpu[1]), 2: median(cpu[2]) },
    cores: { 1: median(busy[1]), 2: median(busy[2]) },
    samples,
    kernels: ovqKernels(),
  };
}

function poolSection() {
  const before = load();
  const r = runChild(['--pool'], ['--expose-gc']);
  const ratio = r.one / r.two;
  const pairs = [...r.pairs].sort((a, b) => a - b);
  const cores = os.availableParallelism?.() ?? os.cpus().length;
  console.log('');
  console.log(
    `both cores: ovqAttentionBatched, B×H = 8 (per-head β), T = 4096, d = 64, N = 1024, C = 64, ${r.kernels} kernels, SharedArrayBuffer inputs; 1-worker vs 2-worker pool interleaved, wall medians of ${POOL_REPEATS} repeats after 2 warm-ups; ${cores} cores (${os.cpus()[0].model}), node ${process.version}`,
  );
  console.log(
    `1 worker ${fmt(r.one, 3)} s, 2 workers ${fmt(r.two, 3)} s → ${fmt(ratio)}x (target ≥ 1.7x: ${ratio >= 1.7 ? 'met' : 'MISSED'}); per-repeat ratios ${fmt(pairs[0])}–${fmt(pairs[pairs.length - 1])}`,
  );
  console.log(
    `CPU per call (process, workers included): 1 worker ${fmt(r.cpu[1], 3)} s, 2 workers ${fmt(r.cpu[2], 3)} s (${fmt((100 * r.cpu[2]) / r.cpu[1] - 100, 0)}% more for the same work); cores obtained (CPU s per wall s): 1 worker ${fmt(r.cores[1])}, 2 workers ${fmt(r.cores[2])}; load average before ${before}, after ${load()} (other work competes for the cores)`,
  );
}

/**
 * Child: 64k tokens streamed in 1k pieces through ovqAttention({ state }) and, where present,
 * an OvqStream; heap + external + array buffers after GC, after piece 8 and after piece 64.
 */
function childStreamMemory() {
  const piece = 1024;
  const pieces = 64;
  const seq = randomInputs(11, piece);
  const out = new Float32Array(piece * D);
  const bytes = () => {
    globalThis.gc();
    const m = process.memoryUsage();
    return m.heapUsed + m.external + m.arrayBuffers;
  };
  const result = {};
  let state;
  let at8 = 0;
  for (let i = 0; i < pieces; i++) {
    state = ovqAttention(seq, CONFIG, { state, out }).state;
    if (i === 7) at8 = bytes();
  }
  result.calls = bytes() - at8;
  if (typeof createOvqStream === 'function') {
    const stream = createOvqStream({ keyDim: D, valueDim: D }, CONFIG);
    for (let i = 0; i < pieces; i++) {
      stream.append(seq, out);
      if (i === 7) at8 = bytes();
    }
    result.stream = bytes() - at8;
    stream.dispose();
  }
  return result;
}

function streamMemorySection() {
  const r = runChild(['--stream-memory'], ['--expose-gc', '--single-threaded']);
  const kib = (b) => `${fmt(b / 1024, 0)} KiB`;
  const verdict = (b) => (b < 2 ** 20 ? 'met' : 'MISSED');
  console.log('');
  console.log(
    `memory flat in T: 64k tokens in 1k pieces, growth of heap+external+arrayBuffers (after GC) from piece 8 to piece 64: ovqAttention({ state }) ${kib(r.calls)} (< 1 MiB: ${verdict(r.calls)})${r.stream === undefined ? '' : `, OvqStream.append ${kib(r.stream)} (${verdict(r.stream)})`}`,
  );
}

/** Child: forward CPU µs/token at 4k, 16k, 64k, interleaved (1 warm-up round, median of 3). */
function childLinear(growth) {
  const config = { ...CONFIG, growth };
  const lengths = [4096, 16384, 65536];
  const seqs = lengths.map((T) => randomInputs(T + 7, T));
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  const samples = lengths.map(() => []);
  for (let r = 0; r < 4; r++) {
    lengths.forEach((T, i) => {
      const c0 = cpu();
      ovqAttention(seqs[i], config);
      if (r > 0) samples[i].push(((cpu() - c0) / T) * 1e6);
    });
  }
  const flops = lengths.map(
    (T) => chunkedFlops({ seqLen: T, keyDim: D, valueDim: D }, config).forward / T,
  );
  return { lengths, us: samples.map(median), flops };
}

function linearSection() {
  console.log('');
  console.log(
    'linear time: forward CPU µs/token, T = 4k / 16k / 64k interleaved in one process (median of 3 rounds after 1 warm-up round)',
  );
  for (const growth of ['saturating', 'fixed']) {
    const r = runChild(['--linear', growth]);
    const spread = Math.max(...r.us) / Math.min(...r.us);
    const perFlop = r.us.map((u, i) => u / r.flops[i]);
    const flopSpread = Math.max(...perFlop) / Math.min(...perFlop);
    console.log(
      `- ${growth}: ${r.us.map((u) => fmt(u)).join(' / ')} → max/min ${fmt(spread)}x (≤ 1.3x: ${spread <= 1.3 ? 'met' : 'MISSED'}); FLOPs per token ${fmt(r.flops[2] / r.flops[0])}x from 4k to 64k; time per FLOP max/min ${fmt(flopSpread)}x`,
    );
  }
}

/** Mean dictionary size seen by the reads of a T-token run (saturating growth). */
function meanRows(T) {
  const N = CONFIG.capacity;
  const C = CONFIG.chunkSize;
  let n = 0;
  let sum = 0;
  for (let t = 0; t < T; t += C) {
    sum += n * Math.min(C, T - t);
    n = Math.max(n, Math.min(N, t + C, Math.floor((N * (t + C)) / (N + t + C))));
  }
  return sum / T;
}

main();
