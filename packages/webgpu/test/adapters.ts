// The adapters these tests run on: every WebGPU route present on this machine (Dawn in Node:
// OpenGL ES compatibility mode on Mesa llvmpipe, and Vulkan, which is SwiftShader here and the
// real driver on a GPU machine). An absent adapter skips with a printed reason, except under CI,
// where it fails. OVQ_WEBGPU_ADAPTERS=opengles,vulkan picks a subset.

import { reportUnavailable } from '@ovq/vitest-config/unavailable';
import { type AcquireOptions, acquireDevice } from '../src/device/acquire.js';
import { prepareHeadlessDawn } from '../src/device/node.js';
import { GpuContext } from '../src/gpu/context.js';

export type AdapterName = 'opengles' | 'vulkan';

export type Adapter = {
  name: AdapterName;
  ctx: GpuContext | null;
  reason: string;
  description: string;
};

/** acquireDevice options for each route. */
export function routeOptions(name: AdapterName): AcquireOptions {
  return name === 'opengles'
    ? { nodeBackend: 'opengles', featureLevel: 'compatibility' }
    : { nodeBackend: 'vulkan', featureLevel: 'core' };
}

async function open(name: AdapterName): Promise<Adapter> {
  try {
    const acquired = await acquireDevice(routeOptions(name));
    const info = acquired.adapterInfo;
    return {
      name,
      ctx: new GpuContext(acquired.device, { poisonOutputs: true }),
      reason: '',
      description:
        `${name}: ${info.vendor} ${info.architecture} ${info.device} ${info.description}`.trim(),
    };
  } catch (error) {
    return { name, ctx: null, reason: String(error), description: name };
  }
}

const cache = new Map<AdapterName, Promise<Adapter>>();

/** Opens (once per test file) each requested adapter; absent ones carry the reason. */
export async function adapters(): Promise<Adapter[]> {
  await prepareHeadlessDawn();
  const wanted = (process.env.OVQ_WEBGPU_ADAPTERS ?? 'opengles,vulkan')
    .split(',')
    .map((s) => s.trim()) as AdapterName[];
  const out: Adapter[] = [];
  for (const name of wanted) {
    if (!cache.has(name)) cache.set(name, open(name));
    out.push(await (cache.get(name) as Promise<Adapter>));
  }
  for (const a of out) {
    if (!a.ctx) reportUnavailable(`[webgpu tests] adapter ${a.name} absent: ${a.reason}`);
  }
  return out;
}

/** Names for `describe.each`: resolved at collection time so absent adapters show as skipped. */
export const present = await adapters();
