// Starts the tfjs webgpu backend in Node on Dawn (the `webgpu` package), as @ovq/tfjs's tests and
// the trainer do. Without a GPU, Vulkan is SwiftShader (Debian's chromium ships its ICD).
import { existsSync, mkdirSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const REAL_VULKAN_ICDS = [
  '/usr/share/vulkan/icd.d/nvidia_icd.json',
  '/etc/vulkan/icd.d/nvidia_icd.json',
];

/** Registers, initialises and selects the webgpu backend: null, or the reason it cannot. */
async function startWebGpu(): Promise<string | null> {
  try {
    process.env.EGL_PLATFORM ??= 'surfaceless';
    if (!process.env.XDG_RUNTIME_DIR) {
      mkdirSync('/tmp/ovq-xdg-runtime', { recursive: true, mode: 0o700 });
      process.env.XDG_RUNTIME_DIR = '/tmp/ovq-xdg-runtime';
    }
    if (
      !process.env.VK_ICD_FILENAMES &&
      !REAL_VULKAN_ICDS.some(existsSync) &&
      existsSync(SWIFTSHADER)
    ) {
      process.env.VK_ICD_FILENAMES = SWIFTSHADER;
    }
    const dawn = (await import('webgpu')) as unknown as {
      create: (options: string[]) => unknown;
      globals: Record<string, unknown>;
    };
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create(['backend=vulkan']);
    // Keep Dawn's instance alive for the whole run (it tears down when garbage-collected).
    (globalThis as { __ovqDawn?: unknown }).__ovqDawn = gpu;
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu')))
      return 'tf.setBackend("webgpu") returned false (no adapter)';
    await tf.ready();
    return null;
  } catch (error) {
    return `webgpu backend unavailable: ${String(error)}`;
  }
}

/**
 * Starts the webgpu backend for a test file: null when ready, else the printed reason to skip.
 * Under CI (which provides an adapter) a missing backend is a failure, not a skip.
 */
export async function webGpuOrSkip(): Promise<string | null> {
  const reason = await startWebGpu();
  if (reason && process.env.CI)
    throw new Error(`[ovq/train] CI requires the webgpu backend: ${reason}`);
  if (reason) console.warn(`[ovq/train] skipping webgpu tests: ${reason}`);
  return reason;
}
