// Benchmark of the chunked Float32 path (not a test): `pnpm --filter @ovq/core bench`.
// 1. Checks the chunked forward and backward against the float64 reference on a small case; a
//    wrong kernel gets no numbers. 2. For each T, a fresh child process times forward and
//    forward+backward (median and p20–p80 of repeats after warm-up), and two more fresh children
//    measure peak memory: maxRSS after one run minus maxRSS once inputs, outputs and gradients
//    are allocated and touched (so it includes workspace, tape, trace, JIT code and V8 heap).
// GFLOP/s use the FLOP model in src/chunked/flops.ts. Runs on the built dist/ (Node cannot run .ts).
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { BackwardScratch } from '../dist/chunked/backward.js';
import { createTape, rowsNeeded } from '../dist/chunked/forward.js';
import { HeadWorkspace } from '../dist/chunked/head.js';
import { chunkedFlops, ovqAttention, ovqAttentionBackward } from '../dist/chunked/index.js';
import { ReadScratch } from '../dist/chunked/read.js';
import {
  ovqAttentionReference,
  ovqAttentionReferenceBackward,
  resolveOvqConfig,
} from '../dist/index.js';
import { assertClose, createRng } from '../dist/testing/index.js';

const D = 64;
const CONFIG = { chunkSize: 64, capacity: 1024, beta: 8 };
const LENGTHS = (process.env.OVQ_BENCH_LENGTHS ?? '1024,4096,16384,65536').split(',').map(Number);
const SELF = fileURLToPath(import.meta.url);

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
  for (let r = 0; r < warm + reps; r++) {
    const input = r < warm ? warmSeq : seq;
    const o = r < warm ? undefined : { out };
    const g = r < warm ? undefined : { out: grads };
    globalThis.gc?.();
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
  const chunked = ovqAttention(seq, config);
  const ref = ovqAttentionReference(seq, config, { replay: chunked.trace });
  assertClose('bench check: output', ref.output, chunked.output, 1e-5);
  const g = ovqAttentionBackward(seq, config, seq.dOutput);
  const r = ovqAttentionReferenceBackward(seq, config, seq.dOutput, { replay: g.trace });
  for (const name of ['dq', 'dk', 'dv'])
    assertClose(`bench check: ${name}`, r[name], g[name], 1e-5);
  assertClose('bench check: dbeta', [r.dbeta], [g.dbeta], 1e-5);
}

function runChild(args) {
  const flags = ['--expose-gc', '--single-threaded'];
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
  try {
    checkCorrectness();
  } catch (error) {
    console.error(
      `chunked path disagrees with the reference; no numbers reported.\n${error.message}`,
    );
    process.exit(1);
  }
  const load = () =>
    os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(' ');
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
    `- time per token, max/min over T = 4k…64k: forward ${fmt(spread('fUs'))}x, forward+backward ${fmt(spread('bUs'))}x (≤ 1.5x: ${verdict(spread('fUs') <= 1.5 && spread('bUs') <= 1.5)})`,
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
    `  growth 'fixed' (n = N from token 1024 on), forward µs/token CPU: ${fixed.map((r) => `${r.T}: ${fmt(r.us)}`).join(', ')} → max/min ${fmt(fixedSpread)}x (${verdict(fixedSpread <= 1.5)})`,
  );
  console.log(
    `- forward GFLOP/s, worst T: ${fmt(minGf)} (≥ 1.5 on one core: ${verdict(minGf >= 1.5)})`,
  );
  console.log(
    `- peak extra memory, max − min over T = 4k…64k: forward ${mb(memSpread('fwd'))} MB, forward+backward ${mb(memSpread('both'))} MB (inputs alone at 64k: ${mb(3 * 65536 * D * 4)} MB)`,
  );
  console.log(`load average at end: ${load()}`);
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
