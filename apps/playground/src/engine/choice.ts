// Which path a run takes, and the sentence the page shows about it. "auto": WebGPU when
// navigator.gpu gives a hardware adapter; a software fallback adapter (SwiftShader, as on a
// machine without a GPU) is slower than the CPU path here, so auto uses the CPU then, and
// "webgpu" forces the GPU path whenever any adapter exists.
import { type GpuProbe, type PathName, probeGpu } from './backend.js';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

export async function describeGpu(): Promise<{
  available: boolean;
  software: boolean;
  detail: string;
}> {
  const gpu = await probeGpu();
  return gpu.ctx
    ? { available: true, software: gpu.software, detail: gpu.adapter }
    : { available: false, software: false, detail: gpu.reason };
}

export async function createBackendChoice(
  choice: BackendChoice,
): Promise<{ path: PathName; gpu: GpuProbe; note: string }> {
  const gpu = await probeGpu();
  if (choice === 'cpu') {
    return { path: 'cpu', gpu, note: 'Running on the CPU path (@ovq/core), as chosen.' };
  }
  if (!gpu.ctx) {
    if (choice === 'webgpu') throw new Error(`backend: got 'webgpu'; ${gpu.reason}`);
    return { path: 'cpu', gpu, note: `Running on the CPU path (@ovq/core): ${gpu.reason}.` };
  }
  if (choice === 'auto' && gpu.software) {
    return {
      path: 'cpu',
      gpu,
      note: `Running on the CPU path (@ovq/core): the only WebGPU adapter is a software fallback (${gpu.adapter}), slower than the CPU path; choose “WebGPU” to use it anyway.`,
    };
  }
  return { path: 'webgpu', gpu, note: `Running on WebGPU (@ovq/webgpu): ${gpu.adapter}.` };
}
