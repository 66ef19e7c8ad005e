// Benchmark of the chunked Float32 path (not a test): `pnpm --filter @ovq/core bench`.
// 1. Checks the chunked forward and backward against the float64 reference on a small case; a
//    wrong kernel gets no numbers. 2. For each T, a fresh child process times forward and
//    forward+backward (median and p20–p80 of repeats after warm-up), and two more fresh children
//    measure peak memory: maxRSS after one run minus maxRSS once inputs, outputs and gradients
//    are allocated and touched (so it includes workspace, tape, trace, JIT code and V8 heap).
// GFLOP/s use the FLOP model in src/chunked/flops.ts. Runs on the built dist/ (Node cannot run .ts).
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { BackwardScratch } from '../dist/chunked/backward.js';
import { createTape, rowsNeeded } from '../dist/chunked/forward.js';
import { HeadWorkspace } from '../dist/chunked/head.js';
import {
  chunkedFlops,
  ovqAttentionChunked,
  ovqAttentionChunkedBackward,
} from '../dist/chunked/index.js';
import { ReadScratch } from '../dist/chunked/read.js';
import { ovqAttention, ovqAttentionBackward, resolveOvqConfig } from '../dist/index.js';
import { assertClose, createRng } from '../dist/testing/index.js';

const D = 64;
const CONFIG = { chunkSize: 64, capacity: 1024, beta: 8 };
const LENGTHS = [1024, 4096, 16384, 65536];
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

/** Child: time `mode` ('fwd' or 'fwdbwd') at length T; prints one JSON line. */
function childTime(T) {
  const seq = randomInputs(T, T);
  const out = new Float32Array(T * D);
  const grads = {
    dq: new Float32Array(T * D),
    dk: new Float32Array(T * D),
    dv: new Float32Array(T * D),
  };
  const [warm, reps] = T <= 4096 ? [2, 7] : T <= 16384 ? [1, 5] : [1, 3];
  const fwd = [];
  const both = [];
  for (let r = 0; r < warm + reps; r++) {
    globalThis.gc?.();
    const t0 = performance.now();
    ovqAttentionChunked(seq, CONFIG, { out });
    const t1 = performance.now();
    ovqAttentionChunkedBackward(seq, CONFIG, seq.dOutput, { out: grads });
    const t2 = performance.now();
    if (r >= warm) {
      fwd.push((t1 - t0) / 1e3);
      both.push((t2 - t0) / 1e3);
    }
  }
  fwd.sort((a, b) => a - b);
  both.sort((a, b) => a - b);
  const pick = (s) => ({ median: quantile(s, 0.5), p20: quantile(s, 0.2), p80: quantile(s, 0.8) });
  return { T, fwd: pick(fwd), both: pick(both), reps };
}

/** Child: peak RSS added by one run of `mode` over a process holding inputs, outputs, gradients. */
function childMemory(T, mode) {
  const seq = randomInputs(T, T);
  const out = new Float32Array(T * D).fill(0);
  const grads = {
    dq: new Float32Array(T * D).fill(0),
    dk: new Float32Array(T * D).fill(0),
    dv: new Float32Array(T * D).fill(0),
  };
  globalThis.gc?.();
  const before = process.resourceUsage().maxRSS * 1024;
  const rss = process.memoryUsage().rss;
  ovqAttentionChunked(seq, CONFIG, { out });
  if (mode === 'fwdbwd') ovqAttentionChunkedBackward(seq, CONFIG, seq.dOutput, { out: grads });
  const after = process.resourceUsage().maxRSS * 1024;
  return { T, mode, extra: after - before, baselineGap: before - rss };
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
  const chunked = ovqAttentionChunked(seq, config);
  const ref = ovqAttention(seq, config, { replay: chunked.trace });
  assertClose('bench check: output', ref.output, chunked.output, 1e-5);
  const g = ovqAttentionChunkedBackward(seq, config, seq.dOutput);
  const r = ovqAttentionBackward(seq, config, seq.dOutput, { replay: g.trace });
  for (const name of ['dq', 'dk', 'dv'])
    assertClose(`bench check: ${name}`, r[name], g[name], 1e-5);
  assertClose('bench check: dbeta', [r.dbeta], [g.dbeta], 1e-5);
}

function runChild(args) {
  const text = execFileSync(process.execPath, ['--expose-gc', SELF, ...args], { encoding: 'utf8' });
  return JSON.parse(text.trim().split('\n').pop());
}

const fmt = (x, digits = 2) => x.toFixed(digits);
const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);

function main() {
  const args = process.argv.slice(2);
  if (args[0] === '--time') return console.log(JSON.stringify(childTime(Number(args[1]))));
  if (args[0] === '--memory')
    return console.log(JSON.stringify(childMemory(Number(args[1]), args[2])));

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
    `shape: one head, d=${D}, capacity ${CONFIG.capacity}, C=${CONFIG.chunkSize}, beta ${CONFIG.beta}, saturating growth; node ${process.version}, single thread`,
  );
  console.log('');
  const header =
    '| T | rows | fwd tok/s | fwd GFLOP/s | fwd µs/tok (p20–p80) | fwd+bwd tok/s | fwd+bwd GFLOP/s | fwd+bwd µs/tok (p20–p80) | peak extra MB fwd / fwd+bwd | explicit MB (ws+scratch / tape) |';
  console.log(header);
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const rows = [];
  for (const T of LENGTHS) {
    const time = runChild(['--time', String(T)]);
    const memF = runChild(['--memory', String(T), 'fwd']);
    const memB = runChild(['--memory', String(T), 'fwdbwd']);
    const flops = chunkedFlops({ seqLen: T, keyDim: D, valueDim: D }, CONFIG);
    const ex = explicitBytes(T);
    const f = time.fwd;
    const b = time.both;
    const us = (s) => (s / T) * 1e6;
    rows.push({
      T,
      fUs: us(f.median),
      bUs: us(b.median),
      gf: flops.forward / f.median / 1e9,
      memF,
      memB,
    });
    console.log(
      `| ${T} | ${flops.finalSize} | ${fmt(T / f.median, 0)} | ${fmt(flops.forward / f.median / 1e9)} | ${fmt(us(f.median))} (${fmt(us(f.p20))}–${fmt(us(f.p80))}) | ${fmt(T / b.median, 0)} | ${fmt((flops.forward + flops.backward) / b.median / 1e9)} | ${fmt(us(b.median))} (${fmt(us(b.p20))}–${fmt(us(b.p80))}) | ${mb(memF.extra)} / ${mb(memB.extra)} | ${mb(ex.ws + ex.bwd)} / ${mb(ex.tape)} |`,
    );
  }
  console.log('');
  const long = rows.filter((r) => r.T >= 4096);
  const spread = (key) =>
    Math.max(...long.map((r) => r[key])) / Math.min(...long.map((r) => r[key]));
  const minGf = Math.min(...rows.map((r) => r.gf));
  const memSpread = (key) =>
    Math.max(...long.map((r) => r[key].extra)) - Math.min(...long.map((r) => r[key].extra));
  const verdict = (ok) => (ok ? 'met' : 'MISSED');
  console.log(
    `time per token, max/min over T = 4k…64k: forward ${fmt(spread('fUs'))}x, forward+backward ${fmt(spread('bUs'))}x (target ≤ 1.5x: ${verdict(spread('fUs') <= 1.5 && spread('bUs') <= 1.5)})`,
  );
  console.log(
    `forward GFLOP/s, worst T: ${fmt(minGf)} (target ≥ 1.5 on one core: ${verdict(minGf >= 1.5)})`,
  );
  console.log(
    `peak extra memory spread over T = 4k…64k: forward ${mb(memSpread('memF'))} MB, forward+backward ${mb(memSpread('memB'))} MB (inputs at 64k: ${mb(3 * 65536 * D * 4)} MB)`,
  );
  console.log(
    'peak extra = maxRSS after one run − maxRSS with inputs/outputs/gradients allocated, in a fresh process (no warm-up: includes JIT code and V8 heap).',
  );
  console.log(
    'explicit = typed arrays the chunked path allocates: workspace + backward scratch (constant in T) / absorb tape (4 bytes per token: the O(T) part, plus the returned trace).',
  );
}

main();
