// Obtaining a GPUDevice: from `navigator.gpu` in browsers, or from Dawn (the optional peer
// dependency `webgpu`) in Node, loaded only when asked. Any GPUDevice the caller already has works
// too; this helper only adds the limits and features the kernels can use.
import { WebGpuError } from '../gpu/errors.js';
import { probeSubgroupLayout } from './subgroup-layout.js';
import { subgroupsTurnedOffByEnv } from './variants.js';

export type NodeBackend = 'default' | 'opengles' | 'vulkan';

export type AcquireOptions = {
  /** 'compatibility' asks for a compatibility-mode adapter (e.g. OpenGL ES); default 'core'. */
  featureLevel?: 'core' | 'compatibility';
  /** Node only: Dawn backend toggle (`backend=…`); default lets Dawn choose. */
  nodeBackend?: NodeBackend;
  /** Extra Dawn options for Node (`create([...])`), e.g. 'enable-dawn-features=...'. */
  dawnOptions?: string[];
  powerPreference?: GPUPowerPreference;
};

export type AcquiredDevice = {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string };
  featureLevel: 'core' | 'compatibility';
  isFallbackAdapter: boolean;
};

// Limits worth raising to the adapter's maximum: they pick kernel variants and compat mode's
// defaults (4 storage buffers, 128 invocations, 16 KiB workgroup storage) are too small.
const RAISED_LIMITS = [
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupsPerDimension',
  'maxDynamicUniformBuffersPerPipelineLayout',
] as const;

const OPTIONAL_FEATURES: GPUFeatureName[] = ['timestamp-query', 'subgroups'];

type GpuLike = { requestAdapter(options?: unknown): Promise<GPUAdapter | null> };

// What to do when no adapter comes back: in Node it is almost always the missing headless set-up.
const NO_ADAPTER_FIX =
  typeof process !== 'undefined' && process.versions?.node
    ? 'In Node, call `await prepareHeadlessDawn()` (from @ovq/webgpu) before acquireDevice(); on a ' +
      'machine without a GPU driver also install a software one (Mesa: `apt-get install ' +
      "mesa-vulkan-drivers libvulkan1` with {nodeBackend: 'opengles', featureLevel: " +
      "'compatibility'}, or Chromium's SwiftShader); see \"Node set-up\" in @ovq/webgpu's README"
    : 'The browser has WebGPU disabled or no usable GPU (Chromium: enable WebGPU, e.g. ' +
      '--enable-unsafe-webgpu on Linux)';

// Dawn tears down its instance when the JS object is garbage-collected, which crashes the
// driver's worker threads under a live device: keep every instance and adapter we create alive.
const keepAlive = new Set<unknown>();

async function nodeGpu(options: AcquireOptions): Promise<GpuLike> {
  let mod: { create: (opts: string[]) => GpuLike; globals: Record<string, unknown> };
  try {
    // A variable specifier keeps bundlers from pulling Dawn into browser builds.
    const name = 'webgpu';
    mod = await import(/* @vite-ignore */ name);
  } catch (cause) {
    throw new WebGpuError(
      'acquire',
      `no navigator.gpu and the optional peer dependency "webgpu" (Dawn) could not be loaded (${String(cause)}); expected \`npm i webgpu\` in Node`,
    );
  }
  // Dawn's classes (GPUBufferUsage, …) must be globals, as in a browser.
  for (const [key, value] of Object.entries(mod.globals)) {
    if (!(key in globalThis)) (globalThis as Record<string, unknown>)[key] = value;
  }
  const dawn = [...(options.dawnOptions ?? [])];
  if (options.nodeBackend && options.nodeBackend !== 'default')
    dawn.push(`backend=${options.nodeBackend}`);
  const gpu = mod.create(dawn);
  keepAlive.add(gpu);
  return gpu;
}

/** The platform's WebGPU entry point: `navigator.gpu`, else Dawn in Node. */
export async function getGpu(options: AcquireOptions = {}): Promise<GpuLike> {
  const nav = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator;
  if (nav?.gpu && !options.nodeBackend && !options.dawnOptions) return nav.gpu;
  return nodeGpu(options);
}

/**
 * Requests an adapter and a device with the adapter's maximum for the limits that choose kernel
 * variants, plus `timestamp-query` and `subgroups` when present. Never asks for `shader-f16`.
 * With `subgroups`, also runs the device's subgroup layout probe (probeSubgroupLayout) once.
 */
export async function acquireDevice(options: AcquireOptions = {}): Promise<AcquiredDevice> {
  const gpu = await getGpu(options);
  const featureLevel = options.featureLevel ?? 'core';
  const adapter = await gpu.requestAdapter({
    featureLevel,
    ...(options.powerPreference ? { powerPreference: options.powerPreference } : {}),
  });
  if (!adapter) {
    throw new WebGpuError(
      'acquire',
      `requestAdapter({featureLevel: '${featureLevel}'}) returned null; expected an adapter. ${NO_ADAPTER_FIX}`,
    );
  }
  keepAlive.add(adapter);
  const requiredLimits: Record<string, number> = {};
  const adapterLimits = adapter.limits as unknown as Record<string, number>;
  for (const name of RAISED_LIMITS) {
    const value = adapterLimits[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  const requiredFeatures = OPTIONAL_FEATURES.filter((f) => adapter.features.has(f));
  const device = await adapter.requestDevice({ requiredFeatures, requiredLimits });
  // Before any GpuContext chooses kernels: the subgroup kernels need the layout this checks.
  if (device.features.has('subgroups') && !subgroupsTurnedOffByEnv()) {
    await probeSubgroupLayout(device);
  }
  const info = (adapter as { info?: Partial<GPUAdapterInfo> }).info ?? {};
  return {
    device,
    adapterInfo: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
    },
    featureLevel: adapter.features.has('core-features-and-limits') ? 'core' : featureLevel,
    isFallbackAdapter: Boolean(
      (info as { isFallbackAdapter?: boolean }).isFallbackAdapter ??
        (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter,
    ),
  };
}
