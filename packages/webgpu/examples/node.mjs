// OVQ-attention on WebGPU in Node (Dawn): npm i @ovq/webgpu webgpu
import { ovqAttention as ovqAttentionCpu } from '@ovq/core';
import {
  acquireDevice,
  GpuContext,
  ovqAttention,
  ovqAttentionBackward,
  prepareHeadlessDawn,
} from '@ovq/webgpu';

// Before the first adapter request: what Dawn needs without a display (and SwiftShader's
// software Vulkan when the machine has no GPU driver). Without it Node finds no adapter.
await prepareHeadlessDawn();
const { device, adapterInfo } = await acquireDevice();
const ctx = new GpuContext(device);

// q, k: [batchHeads, seqLen, keyDim]; v, dOutput: [batchHeads, seqLen, valueDim]
const [batchHeads, seqLen, keyDim, valueDim] = [2, 96, 16, 16];
let seed = 1;
const random = (n) =>
  Float32Array.from({ length: n }, () => (seed = (seed * 48271) % 2147483647) / 2147483647 - 0.5);
const q = random(batchHeads * seqLen * keyDim);
const k = random(batchHeads * seqLen * keyDim);
const v = random(batchHeads * seqLen * valueDim);
const dOutput = random(batchHeads * seqLen * valueDim);
const input = { q, k, v, batchHeads, seqLen, keyDim, valueDim };
const config = { chunkSize: 32, capacity: 24, beta: 8 };

const { output, state } = await ovqAttention(ctx, input, config); // state: one OvqState per head
const { dq, dk, dv, dbeta } = await ovqAttentionBackward(ctx, input, config, dOutput);
ctx.dispose(); // destroys every buffer the context created
device.destroy();

// Head 0 on the CPU (@ovq/core) gives the same outputs up to float32 rounding.
const head0 = (x, dim) => x.subarray(0, seqLen * dim);
const cpu = ovqAttentionCpu(
  { q: head0(q, keyDim), k: head0(k, keyDim), v: head0(v, valueDim), seqLen, keyDim, valueDim },
  config,
);
const maxDiff = Math.max(...cpu.output.map((x, i) => Math.abs(x - output[i])));
console.log(`adapter: ${adapterInfo.description || adapterInfo.vendor || 'unnamed'}`);
console.log(`dictionary rows per head: ${state.map((s) => s.size).join(', ')}`);
console.log(`gradients: dq ${dq.length}, dk ${dk.length}, dv ${dv.length}, dβ ${dbeta}`);
console.log(`max |gpu − cpu| on head 0: ${maxDiff.toExponential(2)}`);
