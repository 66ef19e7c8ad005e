// ovq-bench train-speed: how close training gets to this machine's matmul speed. Trains the
// laptop analogue of the paper's models (MQAR, 4 layers, d_model 128, 4 heads, T = 1024, batch 4)
// for a few AdamW steps per mixer pair and reports tokens/s, parameters, model FLOP/s
// (6·params·tokens/s plus each mixer's own FLOPs, forward+backward = 3× its forward model), the
// tfjs-wasm single-thread 1024³ matMul GFLOP/s measured in this process as the yardstick, their
// ratio (MFU), time per phase and the top ops by kernel time (tf.profile of one step).
import { mkdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { denseStateForwardFlops, ovqForwardFlops, softmaxForwardFlops } from '../registry/flops.js';

type TrainModule = typeof import('@ovq/train');
// The slice of TensorFlow.js used here (bench does not depend on tfjs: it is @ovq/train's peer).
type Tensor = {
  dataSync(): ArrayLike<number>;
  data(): Promise<ArrayLike<number>>;
  dispose(): void;
};
/** @ovq/train's tensor type (what its optimiser and clipping take). */
type TrainTensor =
  Parameters<TrainModule['clipByGlobalNorm']>[0] extends Map<string, infer T> ? T : never;
type Tf = {
  setBackend(name: string): Promise<boolean>;
  getBackend(): string;
  getKernel(name: string, backend: string): unknown;
  tidy<T>(f: () => T): T;
  dispose(x: unknown): void;
  randomNormal(shape: number[], mean: number, std: number, dtype: 'float32', seed: number): Tensor;
  matMul(a: Tensor, b: Tensor): Tensor;
  variableGrads(
    f: () => unknown,
    vars: unknown[],
  ): { value: Tensor; grads: Record<string, TrainTensor> };
  profile(f: () => Promise<void>): Promise<{ kernels: { name: string; kernelTimeMs: unknown }[] }>;
};

export type TrainSpeedOptions = {
  mixers: string[];
  layers: number;
  dModel: number;
  heads: number;
  seqLen: number;
  batch: number;
  window: number;
  capacity: number;
  chunk: number;
  /** Timed steps per mixer pair (after one warm-up step). */
  steps: number;
  /** Mixer-kernel worker threads per pool (0 or 1: none, the kernels run on the calling thread). */
  threads: number;
  out: string;
};

export const DEFAULT_TRAIN_SPEED: TrainSpeedOptions = {
  mixers: ['swa,ovq', 'swa,softmax', 'swa,gdn', 'swa,kvm'],
  layers: 4,
  dModel: 128,
  heads: 4,
  seqLen: 1024,
  batch: 4,
  window: 64,
  capacity: 256,
  chunk: 64,
  steps: 3,
  threads: availableParallelism(),
  out: 'bench-results',
};

export type TrainSpeedRow = {
  mixers: string;
  tokensPerSecond: number;
  parameters: number;
  /** 6 · parameters · tokens/s (dense products, forward+backward). */
  denseFlopsPerSecond: number;
  /** Mixers' own FLOPs/s by their models (forward+backward = 3× forward). */
  mixerFlopsPerSecond: number;
  modelFlopsPerSecond: number;
  mfu: number;
  /** Median seconds per step and per phase. */
  stepSeconds: number;
  phases: { forward: number; backward: number; optimizer: number };
  topOps: { kernel: string; ms: number; share: number }[];
  finalLoss: number;
};

export type TrainSpeedReport = {
  suite: 'train-speed';
  command: string[];
  date: string;
  machine: { cpuModel: string; cpuCount: number; node: string };
  backend: string;
  /** Workers of each mixer-kernel pool actually running (0: none). */
  threads: number;
  options: TrainSpeedOptions;
  yardstick: { what: string; gflops: number };
  rows: TrainSpeedRow[];
};

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function loadTfAndTrain(threads: number) {
  // TensorFlow.js is @ovq/train's peer: resolve it from there (the instance its models use). The
  // full package registers the gradients of the built-in ops.
  const require = createRequire(import.meta.url);
  const fromTrain = createRequire(require.resolve('@ovq/train/package.json'));
  const mod = (await import(pathToFileURL(fromTrain.resolve('@tensorflow/tfjs')).href)) as Tf & {
    default?: Tf;
  };
  const tf = mod.default?.setBackend ? mod.default : mod;
  const train = (await import('@ovq/train')) as TrainModule;
  // The trainer's own start: wasm (also the yardstick's backend) and the OVQ kernels' worker pool.
  const started = await train.startBackend({ backend: 'wasm', threads });
  if (started.backend !== 'wasm')
    throw new Error(`train-speed: the tfjs wasm backend could not start (got ${started.backend})`);
  return { tf, train, started };
}

/** tfjs-wasm single-thread GFLOP/s of a 1024×1024·1024×1024 matMul: median of 5 after 2 warm-ups. */
function matMulYardstick(tf: Tf): number {
  const a = tf.randomNormal([1024, 1024], 0, 1, 'float32', 1);
  const b = tf.randomNormal([1024, 1024], 0, 1, 'float32', 2);
  const times: number[] = [];
  for (let r = 0; r < 7; r++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    c.dataSync();
    const ms = performance.now() - t0;
    c.dispose();
    if (r >= 2) times.push(ms);
  }
  tf.dispose([a, b]);
  return (2 * 1024 ** 3) / (median(times) / 1000) / 1e9;
}

/** FLOPs of one training step (forward+backward = 3× forward) of every mixer layer together. */
function mixerStepFlops(kinds: string[], o: TrainSpeedOptions): number {
  const dims = { keyDim: o.dModel / o.heads, valueDim: o.dModel / o.heads };
  const perHead = (kind: string): number => {
    switch (kind) {
      case 'swa':
        return softmaxForwardFlops(o.seqLen, dims, o.window);
      case 'softmax':
        return softmaxForwardFlops(o.seqLen, dims, null);
      case 'ovq':
        return ovqForwardFlops(o.seqLen, dims, {
          beta: 1,
          chunkSize: o.chunk,
          capacity: o.capacity,
        });
      case 'kvm':
        // Window of exact tokens plus a budget of `capacity` mean rows: softmax over ≤ W + N keys.
        return softmaxForwardFlops(o.seqLen, dims, o.window + o.capacity);
      case 'gdn':
        return denseStateForwardFlops('gated-deltanet', o.seqLen, dims);
      case 'linear':
        return denseStateForwardFlops('linear', o.seqLen, dims);
      case 'decay':
        return denseStateForwardFlops('decay-linear', o.seqLen, dims);
      default:
        return Number.NaN;
    }
  };
  return kinds.reduce((sum, k) => sum + 3 * perHead(k) * o.heads * o.batch, 0);
}

async function measurePair(
  tf: Tf,
  lib: TrainModule,
  mixers: string,
  o: TrainSpeedOptions,
  yardstick: number,
  log: (line: string) => void,
): Promise<TrainSpeedRow> {
  const taskSpec = { name: 'mqar' as const, vocabSize: 64, numPairs: 8 };
  const task = lib.createTasksSync(taskSpec);
  const model = new lib.Decoder(
    {
      vocabSize: taskSpec.vocabSize,
      dModel: o.dModel,
      heads: o.heads,
      layers: o.layers,
      mixers,
      mixerOptions: { window: o.window, ovqCapacity: o.capacity, ovqChunkSize: o.chunk },
      seed: 1,
    },
    lib.createTfjsMixer,
  );
  model.build(16);
  const optimizer = new lib.AdamW({ weightDecay: 0.1 });
  const names = new Map([...model.variables].map(([name, v]) => [v.name, name]));
  const varList = [...model.variables.values()];
  const tokens = o.batch * o.seqLen;
  let loss = Number.NaN;

  // One step as the trainer runs it; returns [forward+backward, optimiser] seconds.
  const step = async (index: number): Promise<[number, number]> => {
    const batch = task.sample(o.batch, o.seqLen, lib.itemSeed(1, index));
    const inputs = lib.batchInputs(batch);
    const t0 = performance.now();
    const { value, grads } = tf.variableGrads(
      () => lib.batchLoss(model.forward(inputs), batch),
      varList,
    );
    for (const g of Object.values(grads)) g.dataSync();
    const t1 = performance.now();
    const named = new Map(Object.entries(grads).map(([k, g]) => [names.get(k) ?? k, g]));
    await lib.clipByGlobalNorm(named, 1);
    loss = (await value.data())[0];
    optimizer.apply(model.variables, named, 1e-3);
    for (const v of varList) v.dataSync();
    const t2 = performance.now();
    tf.dispose([value, inputs, ...named.values()]);
    return [(t1 - t0) / 1000, (t2 - t1) / 1000];
  };
  // The forward alone (loss read back), for the forward/backward split.
  const forwardOnly = (index: number): number => {
    const batch = task.sample(o.batch, o.seqLen, lib.itemSeed(1, index));
    const inputs = lib.batchInputs(batch);
    const t0 = performance.now();
    const value = tf.tidy(() => lib.batchLoss(model.forward(inputs), batch));
    value.dataSync();
    const seconds = (performance.now() - t0) / 1000;
    tf.dispose([value, inputs]);
    return seconds;
  };

  await step(0); // warm-up: kernel registration, wasm heap growth
  const fb: number[] = [];
  const opt: number[] = [];
  const fwd: number[] = [];
  for (let s = 1; s <= o.steps; s++) {
    const [a, b] = await step(s);
    fb.push(a);
    opt.push(b);
    fwd.push(forwardOnly(s));
    log(`  ${mixers} step ${s}/${o.steps}: ${((a + b) * 1000).toFixed(0)} ms`);
  }
  // Top ops: kernel time of one more step (wrapper scopes such as customGrad's are not kernels).
  const profile = await tf.profile(async () => {
    await step(o.steps + 1);
  });
  const byKernel = new Map<string, number>();
  for (const k of profile.kernels) {
    if (!tf.getKernel(k.name, tf.getBackend())) continue;
    byKernel.set(k.name, (byKernel.get(k.name) ?? 0) + Number(k.kernelTimeMs));
  }
  const kernelTotal = [...byKernel.values()].reduce((a, b) => a + b, 0);
  const topOps = [...byKernel]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([kernel, ms]) => ({ kernel, ms, share: ms / kernelTotal }));

  const stepSeconds = median(fb.map((a, i) => a + opt[i]));
  const forward = median(fwd);
  const phases = {
    forward,
    backward: Math.max(0, median(fb) - forward),
    optimizer: median(opt),
  };
  const tokensPerSecond = tokens / stepSeconds;
  const parameters = model.parameterCount();
  const denseFlopsPerSecond = 6 * parameters * tokensPerSecond;
  const mixerFlopsPerSecond = mixerStepFlops(model.kinds, o) / stepSeconds;
  const modelFlopsPerSecond = denseFlopsPerSecond + mixerFlopsPerSecond;
  optimizer.dispose();
  model.dispose();
  return {
    mixers,
    tokensPerSecond,
    parameters,
    denseFlopsPerSecond,
    mixerFlopsPerSecond,
    modelFlopsPerSecond,
    mfu: modelFlopsPerSecond / (yardstick * 1e9),
    stepSeconds,
    phases,
    topOps,
    finalLoss: loss,
  };
}

export function formatTrainSpeed(r: TrainSpeedReport): string {
  const o = r.options;
  const lines = [
    `train-speed — ${r.machine.cpuModel} ×${r.machine.cpuCount}, Node ${r.machine.node}, backend ${r.backend}, mixer-kernel worker threads ${r.threads}`,
    `model: ${o.layers} layers, d_model ${o.dModel}, ${o.heads} heads, T ${o.seqLen}, batch ${o.batch}, window ${o.window}, capacity ${o.capacity}, chunk ${o.chunk}; ${o.steps} timed steps (median)`,
    `yardstick: ${r.yardstick.what} = ${r.yardstick.gflops.toFixed(1)} GFLOP/s`,
    '',
    '| mixers | tokens/s | params | model GFLOP/s (dense + mixer) | MFU | step s | fwd / bwd / opt s | top ops (kernel ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |',
  ];
  for (const row of r.rows) {
    const g = (x: number) => (x / 1e9).toFixed(2);
    lines.push(
      `| ${row.mixers} | ${row.tokensPerSecond.toFixed(0)} | ${row.parameters} | ${g(row.modelFlopsPerSecond)} (${g(row.denseFlopsPerSecond)} + ${g(row.mixerFlopsPerSecond)}) | ${row.mfu.toFixed(3)} | ${row.stepSeconds.toFixed(2)} | ${row.phases.forward.toFixed(2)} / ${row.phases.backward.toFixed(2)} / ${row.phases.optimizer.toFixed(2)} | ${row.topOps.map((t) => `${t.kernel} ${t.ms.toFixed(0)}`).join(', ')} |`,
    );
  }
  return lines.join('\n');
}

export async function runTrainSpeed(
  o: TrainSpeedOptions,
  command: string[],
  log: (line: string) => void = (l) => console.error(l),
): Promise<TrainSpeedReport> {
  if (o.dModel % o.heads !== 0)
    throw new Error(`--d-model ${o.dModel} is not a multiple of --heads ${o.heads}`);
  const { tf, train, started } = await loadTfAndTrain(o.threads);
  try {
    const gflops = matMulYardstick(tf);
    log(`yardstick: tfjs-wasm 1024³ matMul ${gflops.toFixed(1)} GFLOP/s`);
    const rows: TrainSpeedRow[] = [];
    for (const mixers of o.mixers) rows.push(await measurePair(tf, train, mixers, o, gflops, log));
    const report: TrainSpeedReport = {
      suite: 'train-speed',
      command,
      date: new Date().toISOString(),
      machine: {
        cpuModel: cpus()[0]?.model ?? 'unknown',
        cpuCount: availableParallelism(),
        node: process.version,
      },
      backend: tf.getBackend(),
      threads: started.threads,
      options: o,
      yardstick: {
        what: 'tfjs-wasm single-thread matMul 1024×1024·1024×1024 (median of 5)',
        gflops,
      },
      rows,
    };
    mkdirSync(o.out, { recursive: true });
    writeFileSync(join(o.out, 'train-speed.json'), `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await started.dispose();
  }
}

/** `ovq-bench train-speed [flags]`: parses its own flags, prints the table, writes the JSON. */
export async function trainSpeedCli(argv: string[]): Promise<number> {
  const o: TrainSpeedOptions = { ...DEFAULT_TRAIN_SPEED };
  const int = (flag: string, v: string | undefined, min = 1) => {
    const x = Number(v);
    if (v === undefined || !Number.isInteger(x) || x < min)
      throw new Error(`${flag} got "${v}"; expected an integer ≥ ${min}`);
    return x;
  };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => argv[++i];
    switch (flag) {
      case '--mixers': {
        // One pair (swa,ovq) or several separated by ';' (swa,ovq;swa,kvm).
        const v = value() ?? '';
        o.mixers = v.split(';').filter(Boolean);
        if (o.mixers.length === 0)
          throw new Error(`--mixers got "${v}"; expected e.g. swa,ovq or "swa,ovq;swa,kvm"`);
        break;
      }
      case '--layers':
        o.layers = int(flag, value());
        break;
      case '--d-model':
        o.dModel = int(flag, value());
        break;
      case '--heads':
        o.heads = int(flag, value());
        break;
      case '--len':
        o.seqLen = int(flag, value());
        break;
      case '--batch':
        o.batch = int(flag, value());
        break;
      case '--window':
        o.window = int(flag, value());
        break;
      case '--capacity':
        o.capacity = int(flag, value());
        break;
      case '--chunk':
        o.chunk = int(flag, value());
        break;
      case '--steps':
        o.steps = int(flag, value());
        break;
      case '--threads':
        o.threads = int(flag, value(), 0);
        break;
      case '--out':
        o.out = value() ?? o.out;
        break;
      case '--quick':
        // About a minute: one timed step, swa,ovq and swa,softmax only.
        o.steps = 1;
        o.mixers = ['swa,ovq', 'swa,softmax'];
        break;
      default:
        throw new Error(
          `train-speed: unknown flag "${flag}"; flags: --mixers --layers --d-model --heads --len --batch --window --capacity --chunk --steps --threads --out --quick`,
        );
    }
  }
  const report = await runTrainSpeed(o, ['ovq-bench', 'train-speed', ...argv]);
  console.log(formatTrainSpeed(report));
  console.log(`\nwrote ${join(o.out, 'train-speed.json')}`);
  return 0;
}
