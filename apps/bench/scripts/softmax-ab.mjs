// Same-process A/B of the softmax yardsticks and OVQ: our tiled softmax, dense attention in
// tfjs-wasm and OVQ's fast path, repeats interleaved so machine load hits all three alike.
// Run after a build: node scripts/softmax-ab.mjs [--fb] [T…]   (defaults 4096 8192; d = 32)
// Forward by default; --fb times forward+backward of the two softmax yardsticks only (OVQ left out
// to keep the run short).
import os from 'node:os';
import { loadRegistry } from '../dist/registry/index.js';

const args = process.argv.slice(2);
const fb = args.includes('--fb');
const mode = fb ? 'forwardBackward' : 'forward';
const Ts = args.filter((a) => a !== '--fb').map(Number);
const reg = await loadRegistry({ webgpu: false, tfjs: 'dense' });
const names = ['softmax/baselines-fast', 'softmax/tfjs-wasm-dense'];
if (!fb) names.push('ovq/core-chunked');
const dims = { keyDim: 32, valueDim: 32 };
for (const T of Ts.length ? Ts : [4096, 8192]) {
  const runs = [];
  for (const name of names) {
    const impl = reg.implementations.find((i) => i.name === name);
    const work = await impl.setup(T, dims);
    await work[mode]();
    runs.push({ name, impl, work, t: [] });
  }
  const load = os.loadavg()[0];
  for (let r = 0; r < 5; r++) {
    for (const run of runs) {
      const s = performance.now();
      await run.work[mode]();
      run.t.push((performance.now() - s) / 1000);
    }
  }
  for (const run of runs) {
    const xs = run.t.sort((a, b) => a - b);
    const gflops = run.impl.flops(T, dims, mode) / xs[2] / 1e9;
    console.log(
      `T=${T} ${mode} ${run.name.padEnd(24)} median ${xs[2].toFixed(3)} s [${xs[1].toFixed(3)}–${xs[3].toFixed(3)}] ${gflops.toFixed(2)} GFLOP/s`,
    );
  }
  console.log(
    `  load ${load.toFixed(1)} → ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`,
  );
}
