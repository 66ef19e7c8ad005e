// Which path a run takes, and the sentence the page shows about it. "auto": WebGPU when
// navigator.gpu gives a hardware adapter; a software fallback adapter (SwiftShader, as on a
// machine without a GPU) is slower than the CPU path here, so auto uses the CPU then, and
// "webgpu" forces the GPU path whenever any adapter exists.
// The probe only asks for an adapter (no device, no @ovq/webgpu): the GPU path and its device
// are loaded on demand (page-run.ts), so the page's first CPU run does not wait for them.
import type { PathName } from './backend.js';

export type BackendChoice = 'auto' | 'webgpu' | 'cpu';

type AdapterProbe =
  | { available: true; software: boolean; detail: string }
  | { available: false; software: false; detail: string };

let adapterPromise: Promise<AdapterProbe> | null = null;

type LightAdapter = {
  info?: {
    description?: string;
    architecture?: string;
    vendor?: string;
    isFallbackAdapter?: boolean;
  };
  isFallbackAdapter?: boolean;
};

export function describeGpu(): Promise<AdapterProbe> {
  adapterPromise ??= (async (): Promise<AdapterProbe> => {
    const gpu = (
      globalThis as {
        navigator?: { gpu?: { requestAdapter(o?: object): Promise<LightAdapter | null> } };
      }
    ).navigator?.gpu;
    if (!gpu)
      return { available: false, software: false, detail: 'this browser has no navigator.gpu' };
    try {
      const adapter = await gpu.requestAdapter({ featureLevel: 'core' });
      if (!adapter) {
        return {
          available: false,
          software: false,
          detail: 'no WebGPU adapter (requestAdapter returned null)',
        };
      }
      const info = adapter.info ?? {};
      const software = Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter);
      const name = info.description || info.architecture || info.vendor || 'unnamed';
      return {
        available: true,
        software,
        detail: `${name}${software ? ' (software fallback)' : ''}`,
      };
    } catch (error) {
      return {
        available: false,
        software: false,
        detail: `no WebGPU adapter (${(error as Error).message})`,
      };
    }
  })();
  return adapterPromise;
}

export async function createBackendChoice(
  choice: BackendChoice,
): Promise<{ path: PathName; note: string }> {
  if (choice === 'cpu') {
    return { path: 'cpu', note: 'Running on the CPU path (@ovq/core), as chosen.' };
  }
  const gpu = await describeGpu();
  if (!gpu.available) {
    if (choice === 'webgpu') throw new Error(`backend: got 'webgpu'; ${gpu.detail}`);
    return { path: 'cpu', note: `Running on the CPU path (@ovq/core): ${gpu.detail}.` };
  }
  if (choice === 'auto' && gpu.software) {
    return {
      path: 'cpu',
      note: `Running on the CPU path (@ovq/core): the only WebGPU adapter is a software fallback (${gpu.detail}), slower than the CPU path; choose “WebGPU” to use it anyway.`,
    };
  }
  return { path: 'webgpu', note: `Running on WebGPU (@ovq/webgpu): ${gpu.detail}.` };
}
