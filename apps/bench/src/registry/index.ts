// The registry: every implementation this checkout can run, and every one it cannot, with why.
import { baselineImplementations } from './baselines.js';
import { ovqImplementations } from './ovq.js';
import { tfjsImplementations } from './tfjs.js';
import type { Registry } from './types.js';
import { type AdapterInfo, webgpuImplementations } from './webgpu.js';

export type RegistryOptions = {
  /** Open WebGPU adapters (Dawn). Off in `quick`: here they are software rasterisers. */
  webgpu: boolean;
  /** true: every @ovq/tfjs op on cpu and wasm; 'dense': only plain dense attention on tfjs-wasm. */
  tfjs: boolean | 'dense';
};

export type LoadedRegistry = Registry & { adapters: AdapterInfo[] };

export async function loadRegistry(options: RegistryOptions): Promise<LoadedRegistry> {
  const parts: Registry[] = [
    { implementations: [...ovqImplementations(), ...baselineImplementations()], skipped: [] },
  ];
  let adapters: AdapterInfo[] = [];
  if (options.webgpu) {
    const gpu = await webgpuImplementations();
    adapters = gpu.adapters;
    parts.push(gpu);
  } else {
    parts.push({
      implementations: [],
      skipped: (['ovq', 'softmax', 'linear'] as const).map((mixer) => ({
        name: `${mixer}/webgpu`,
        mixer,
        implementation: 'webgpu',
        reason:
          'not requested: pass --webgpu (default in `speed`; here only software adapters exist)',
      })),
    });
  }
  if (options.tfjs)
    parts.push(await tfjsImplementations(options.tfjs === true ? undefined : 'dense'));
  if (options.tfjs !== true) {
    parts.push({
      implementations: [],
      skipped: (['ovq', 'softmax', 'linear'] as const).map((mixer) => ({
        name: `${mixer}/tfjs`,
        mixer,
        implementation: 'tfjs',
        reason:
          'not in quick: the tfjs ops wrap the same CPU kernels (`ovq-bench speed` runs them)',
      })),
    });
  }
  return {
    implementations: parts.flatMap((p) => p.implementations),
    skipped: parts.flatMap((p) => p.skipped),
    adapters,
  };
}

/** Keeps entries whose name matches any filter (substring); no filter keeps everything. */
export function selectImplementations<T extends { name: string }>(
  items: T[],
  filters: string[],
): T[] {
  if (filters.length === 0) return items;
  return items.filter((i) => filters.some((f) => i.name.includes(f)));
}

export type { Dims, Implementation, Mixer, Mode, Registry, Skipped } from './types.js';
