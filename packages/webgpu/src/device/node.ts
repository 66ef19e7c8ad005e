// Node only: the set-up headless Dawn needs, shared by every Node entry point that runs WebGPU
// (tests, benchmarks, the trainer). Browsers never call it; Node built-ins are loaded lazily
// through a variable specifier so that bundlers leave them out.
import { type AcquireOptions, getGpu } from './acquire.js';

/** Vulkan drivers of real GPUs; when none is installed, Vulkan means SwiftShader. */
const GPU_VULKAN_ICDS = [
  '/usr/share/vulkan/icd.d/nvidia_icd.json',
  '/etc/vulkan/icd.d/nvidia_icd.json',
];
/** Debian's chromium ships SwiftShader's Vulkan ICD (a CPU implementation). */
const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const RUNTIME_DIR = '/tmp/ovq-xdg-runtime';

/**
 * Sets what Dawn needs without a display, keeping any value already set: EGL_PLATFORM
 * 'surfaceless' (OpenGL ES on Mesa), an XDG_RUNTIME_DIR, and VK_ICD_FILENAMES = SwiftShader on a
 * machine without a GPU Vulkan driver.
 */
export async function prepareHeadlessDawn(): Promise<void> {
  const fsName = 'node:fs';
  const fs = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs');
  process.env.EGL_PLATFORM ??= 'surfaceless';
  if (!process.env.XDG_RUNTIME_DIR) {
    fs.mkdirSync(RUNTIME_DIR, { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = RUNTIME_DIR;
  }
  if (
    !process.env.VK_ICD_FILENAMES &&
    !GPU_VULKAN_ICDS.some((icd) => fs.existsSync(icd)) &&
    fs.existsSync(SWIFTSHADER_ICD)
  ) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
}

/**
 * Makes Dawn the process's `navigator.gpu` (after `prepareHeadlessDawn`), for libraries that look
 * there, such as tfjs-backend-webgpu. Default backend: Vulkan. The instance is kept alive for the
 * whole process (Dawn tears down when it is garbage-collected).
 */
export async function installNodeNavigatorGpu(
  options: AcquireOptions = { nodeBackend: 'vulkan' },
): Promise<GPU> {
  await prepareHeadlessDawn();
  const gpu = (await getGpu({ nodeBackend: 'vulkan', ...options })) as unknown as GPU;
  Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
  return gpu;
}
