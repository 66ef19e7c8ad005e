// Speed benchmark (not a test): every fast path and OVQ's chunked path, d = 64, forward and
// forward+backward, tokens/s and peak memory, median of repeats after a warm-up. Each
// (mixer, T, mode) runs in a fresh child process so its peak RSS is its own.
// Usage: pnpm --filter @ovq/baselines bench [-- --T=1024,4096 --repeats=3 --mixers=ovq,gated
// --quadratic-limit=16384 --full-quadratic] (--mixers keeps mixers whose name starts with a prefix).
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as B from '@ovq/baselines';
import { baselineMixers, D, type Inputs, type Mixer, makeInputs, ovqMixer } from './mixers.js';

type Mode = 'forward' | 'forward+backward';
type CaseResult = { seconds: number[]; peakMb: number; estimated?: boolean };

const args = new Map(
  process.argv.slice(2).map((a) => {
    const s = a.replace(/^--/, '');
    const eq = s.indexOf('=');
    return eq < 0 ? ([s, 'true'] as const) : ([s.slice(0, eq), s.slice(eq + 1)] as const);
  }),
);

const median = (x: number[]) => [...x].sort((a, b) => a - b)[Math.floor((x.length - 1) / 2)];

function timeOnce(m: Mixer, x: Inputs, mode: Mode): number {
  const t0 = performance.now();
  m.forward(x);
  if (mode === 'forward+backward') m.backward(x);
  return (performance.now() - t0) / 1000;
}

/**
 * This process's peak RSS in bytes: Linux VmHWM (per address space, so it starts afresh at exec;
 * getrusage's maxRSS would carry over the parent's RSS at fork), else getrusage.
 */
function peakRss(): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Number(m[1]) * 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Child: one (mixer, T, mode); prints one JSON line. */
async function runCase(
  name: string,
  T: number,
  mode: Mode,
  repeats: number,
  warmup: boolean,
): Promise<void> {
  const m = [ovqMixer, ...baselineMixers].find((x) => x.name === name)!;
  const x = makeInputs(T);
  if (warmup) timeOnce(m, makeInputs(Math.min(T, 1024), 2), mode);
  (globalThis as { gc?: () => void }).gc?.(); // settle the heap so the RSS baseline is the inputs
  const base = process.memoryUsage().rss;
  const seconds: number[] = [];
  for (let r = 0; r < repeats; r++) seconds.push(timeOnce(m, x, mode));
  const peakMb = Math.max(0, peakRss() - base) / 2 ** 20;
  process.stdout.write(`${JSON.stringify({ seconds, peakMb })}\n`);
}

/**
 * Softmax forward at T too large to run whole here: time the last S queries against a KV cache of
 * the first T − S keys (a real streaming call), scale by the ratio of query–key pairs.
 */
function sampledSoftmax(T: number, S: number): number {
  const x = makeInputs(T);
  const head = {
    ...x.seq,
    q: x.seq.q.subarray((T - S) * D),
    k: x.seq.k.subarray((T - S) * D),
    v: x.seq.v.subarray((T - S) * D),
    seqLen: S,
  };
  const state = B.createSoftmaxState(x.seq, {});
  Object.assign(state, {
    position: T - S,
    length: T - S,
    keys: Float64Array.from(x.seq.k.subarray(0, (T - S) * D)),
    values: Float64Array.from(x.seq.v.subarray(0, (T - S) * D)),
  });
  const t0 = performance.now();
  B.softmaxAttentionTiled(head, undefined, { state });
  const seconds = (performance.now() - t0) / 1000;
  const pairs = (n: number) => (n * (n + 1)) / 2;
  return (seconds * pairs(T)) / (pairs(T) - pairs(T - S));
}

function child(name: string, T: number, mode: Mode, repeats: number, warmup: boolean): CaseResult {
  const self = fileURLToPath(import.meta.url);
  const r = spawnSync(
    process.execPath,
    ['--expose-gc', self, `--case=${JSON.stringify({ name, T, mode, repeats, warmup })}`],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{'))
    throw new Error(`${name} T=${T} ${mode} failed: ${r.stderr.slice(-400)}`);
  return JSON.parse(line) as CaseResult;
}

async function main(): Promise<void> {
  const Ts = (args.get('T') ?? '1024,4096,16384,65536').split(',').map(Number);
  const repeats = Number(args.get('repeats') ?? 3);
  const fullQuadratic = args.has('full-quadratic');
  const quadraticLimit = fullQuadratic
    ? Number.POSITIVE_INFINITY
    : Number(args.get('quadratic-limit') ?? 16384);
  const all = [ovqMixer, ...baselineMixers];
  const prefixes = args.get('mixers')?.split(',');
  const mixers = prefixes ? all.filter((m) => prefixes.some((p) => m.name.startsWith(p))) : all;
  console.log(`# @ovq/baselines speed, d = ${D}, one head, Node ${process.version}`);
  console.log(
    'Correctness first (fast path vs float64 reference, T = 256): a failing mixer is not timed.',
  );
  const ok: Mixer[] = [];
  const x = makeInputs(256, 3);
  for (const m of mixers) {
    const r = m.check(x);
    const pass = r <= 1e-4;
    console.log(
      `  ${m.name}: RMS ratio ${r.toExponential(2)} ${pass ? 'ok' : 'FAILED, not timed'}`,
    );
    if (pass) ok.push(m);
  }
  console.log(
    `Repeats: median of ${repeats} after a warm-up for T ≤ 4096; 1 run for larger T (time budget).` +
      ` Quadratic cases above T = ${quadraticLimit} are estimated (est.): forward from the last 1024 queries` +
      ' against a full KV cache, scaled by query–key pairs; forward+backward by the fwd+bwd/fwd ratio measured at the largest' +
      ' fully-run T. Pass --full-quadratic to run them whole.',
  );
  const rows: {
    mixer: string;
    T: number;
    mode: Mode;
    seconds: number;
    peakMb: number | null;
    estimated: boolean;
  }[] = [];
  for (const T of Ts) {
    for (const mode of ['forward', 'forward+backward'] as Mode[]) {
      for (const m of ok) {
        let seconds: number;
        let peakMb: number | null = null;
        let estimated = false;
        if (m.growth === 'quadratic' && T > quadraticLimit) {
          const fwd = rows
            .filter((r) => r.mixer === m.name && r.mode === 'forward' && !r.estimated)
            .pop();
          const both = rows
            .filter((r) => r.mixer === m.name && r.mode === 'forward+backward' && !r.estimated)
            .pop();
          const f =
            mode === 'forward'
              ? sampledSoftmax(T, 1024)
              : (rows.find((r) => r.mixer === m.name && r.T === T && r.mode === 'forward')
                  ?.seconds ?? 0);
          seconds = mode === 'forward' ? f : f * ((both?.seconds ?? 0) / (fwd?.seconds ?? 1));
          estimated = true;
        } else {
          const small = T <= 4096;
          const r = child(m.name, T, mode, small ? repeats : 1, small);
          seconds = median(r.seconds);
          peakMb = r.peakMb;
        }
        rows.push({ mixer: m.name, T, mode, seconds, peakMb, estimated });
        console.error(
          `  ${m.name} T=${T} ${mode}: ${seconds.toFixed(3)} s${estimated ? ' (est.)' : ''}`,
        );
      }
    }
  }
  const ovqName = mixers.find((m) => m.name.startsWith('ovq'))?.name ?? null;
  console.log('\n| mixer | T | mode | time (s) | tokens/s | peak extra RSS (MB) | time / OVQ |');
  console.log('|---|---:|---|---:|---:|---:|---:|');
  for (const r of rows) {
    const ovq = rows.find((o) => o.mixer === ovqName && o.T === r.T && o.mode === r.mode);
    const est = r.estimated ? ' (est.)' : '';
    const ratio = ovq ? (r.seconds / ovq.seconds).toFixed(2) + est : 'n/a';
    const tps = Math.round(r.T / r.seconds).toLocaleString('en-US');
    console.log(
      `| ${r.mixer} | ${r.T} | ${r.mode} | ${r.seconds.toFixed(3)}${est} | ${tps}${est} | ${r.peakMb === null ? '—' : r.peakMb.toFixed(0)} | ${ratio} |`,
    );
  }
}

if (args.has('case')) {
  const c = JSON.parse(args.get('case')!) as {
    name: string;
    T: number;
    mode: Mode;
    repeats: number;
    warmup: boolean;
  };
  await runCase(c.name, c.T, c.mode, c.repeats, c.warmup);
} else {
  await main();
}
