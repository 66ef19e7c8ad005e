// Decode benchmark (not a test): `pnpm --filter @ovq/core bench:decode`.
// OvqStream.step one token at a time against the chunked forward (`ovqAttention`) over the same
// tokens, both continuing the same warmed-up stream (N = 256, d = 64, C = 64, dictionary near
// full), in one process. Reports tokens/s per head and the per-token time ratio; a correctness
// gate (stream = chunked, RMS ≤ 1e-6) runs first. Times are this process's CPU time (run with
// --single-threaded: one JS thread), medians of interleaved repeats after warm-up.
import { createOvqStream, ovqAttention } from '../dist/index.js';
import { assertClose, createRng } from '../dist/testing/index.js';

const D = Number(process.env.OVQ_DECODE_DIM ?? 64);
const N = Number(process.env.OVQ_DECODE_CAPACITY ?? 256);
const CONFIG = { chunkSize: 64, capacity: N, beta: 8 };
const WARM_TOKENS = 8192;
const TIMED_TOKENS = 4096;
const REPEATS = Number(process.env.OVQ_DECODE_REPEATS ?? 7);

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
  return { q: fill(T * D), k: fill(T * D), v: fill(T * D), seqLen: T, keyDim: D, valueDim: D };
}

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const median = (xs) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const warm = ovqAttention(randomInputs(1, WARM_TOKENS), CONFIG).state;
const seq = randomInputs(2, TIMED_TOKENS);
const dims = { keyDim: D, valueDim: D };

/** Steps every token of `seq` through a stream resumed from `warm`; returns CPU seconds. */
function timeStream(out, reuse) {
  const stream = createOvqStream(dims, CONFIG, { state: warm });
  const y = new Float32Array(D);
  const t0 = cpu();
  for (let t = 0; t < TIMED_TOKENS; t++) {
    const q = seq.q.subarray(t * D, (t + 1) * D);
    const k = seq.k.subarray(t * D, (t + 1) * D);
    const v = seq.v.subarray(t * D, (t + 1) * D);
    out.set(reuse ? stream.step(q, k, v, y) : stream.step(q, k, v), t * D);
  }
  const seconds = cpu() - t0;
  stream.dispose();
  return seconds;
}

function timeChunked(out) {
  const t0 = cpu();
  ovqAttention(seq, CONFIG, { state: warm, out });
  return cpu() - t0;
}

// Correctness gate: no numbers for a stream that disagrees with the chunked path.
const chunkedOut = new Float32Array(TIMED_TOKENS * D);
const streamOut = new Float32Array(TIMED_TOKENS * D);
timeChunked(chunkedOut);
timeStream(streamOut, true);
assertClose('decode bench check: stream vs ovqAttention', chunkedOut, streamOut, 1e-6);

const samples = { chunked: [], step: [], stepFresh: [] };
for (let r = 0; r < 2 + REPEATS; r++) {
  globalThis.gc?.();
  const c = timeChunked(chunkedOut);
  globalThis.gc?.();
  const s = timeStream(streamOut, true);
  globalThis.gc?.();
  const f = timeStream(streamOut, false);
  if (r >= 2) {
    samples.chunked.push(c);
    samples.step.push(s);
    samples.stepFresh.push(f);
  }
}
const perToken = (s) => (median(s) / TIMED_TOKENS) * 1e6;
const chunkedUs = perToken(samples.chunked);
const stepUs = perToken(samples.step);
const freshUs = perToken(samples.stepFresh);
console.log(
  `decode, N = ${N}, d = ${D}, C = ${CONFIG.chunkSize}, dictionary ${warm.size} rows after ${WARM_TOKENS} warm-up tokens; ${TIMED_TOKENS} timed tokens, median of ${REPEATS} (CPU time, one thread)`,
);
console.log(
  `  ovqAttention (chunked)      ${chunkedUs.toFixed(2)} µs/token  ${(1e6 / chunkedUs).toFixed(0)} tokens/s`,
);
console.log(
  `  OvqStream.step(q,k,v,out)   ${stepUs.toFixed(2)} µs/token  ${(1e6 / stepUs).toFixed(0)} tokens/s  ${(stepUs / chunkedUs).toFixed(2)}× chunked`,
);
console.log(
  `  OvqStream.step(q,k,v)       ${freshUs.toFixed(2)} µs/token  ${(1e6 / freshUs).toFixed(0)} tokens/s  ${(freshUs / chunkedUs).toFixed(2)}× chunked (fresh output array per step)`,
);

// Allocation on the hot path: heap growth over the timed tokens stepped into a caller buffer
// (it includes the absorbs among them: decisions and the rows re-uploaded, every C tokens).
{
  const stream = createOvqStream(dims, CONFIG, { state: warm });
  const y = new Float32Array(D);
  const rows = Array.from({ length: TIMED_TOKENS }, (_, t) =>
    ['q', 'k', 'v'].map((n) => seq[n].subarray(t * D, (t + 1) * D)),
  );
  // The first step makes the stream's WASM reader (once per stream): not per token.
  stream.step(rows[0][0], rows[0][1], rows[0][2], y);
  globalThis.gc?.();
  const h0 = process.memoryUsage().heapUsed;
  for (let t = 1; t < TIMED_TOKENS; t++) stream.step(rows[t][0], rows[t][1], rows[t][2], y);
  const grown = process.memoryUsage().heapUsed - h0;
  console.log(
    `  heap growth over ${TIMED_TOKENS - 1} step(q,k,v,out) calls: ${grown} bytes (${(grown / (TIMED_TOKENS - 1)).toFixed(1)} per token, ${TIMED_TOKENS / CONFIG.chunkSize} absorbs among them)`,
  );
}
