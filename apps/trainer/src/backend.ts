// Selects the TensorFlow.js backend in Node: cpu (always), wasm (SIMD, single thread in Node),
// or webgpu through Dawn (the `webgpu` package) when an adapter exists. Without a GPU driver Dawn
// runs Vulkan on SwiftShader (Debian's chromium ships its ICD): slow, but the same code path.
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export async function useBackend(name: string): Promise<string> {
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(`${dist}/`);
  } else if (name === 'webgpu') {
    const require = createRequire(import.meta.url);
    let dawn: { create(options: string[]): GPU; globals: object };
    try {
      dawn = require('webgpu');
    } catch {
      throw new Error('--backend webgpu: the optional "webgpu" package (Dawn) is not installed');
    }
    prepareDawnEnvironment();
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create(['backend=vulkan']);
    // Dawn tears its instance down when it is garbage-collected: keep it for the whole run.
    (globalThis as { __ovqDawn?: unknown }).__ovqDawn = gpu;
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true });
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (!(await tf.setBackend(name)))
    throw new Error(`--backend ${name}: TensorFlow.js could not initialise it`);
  await tf.ready();
  return tf.getBackend();
}

const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';
const GPU_VULKAN_ICDS = [
  '/usr/share/vulkan/icd.d/nvidia_icd.json',
  '/etc/vulkan/icd.d/nvidia_icd.json',
];

/** Headless Dawn needs a runtime dir and, on a machine without a GPU driver, SwiftShader. */
function prepareDawnEnvironment(): void {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  if (!process.env.XDG_RUNTIME_DIR) {
    mkdirSync('/tmp/ovq-xdg-runtime', { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = '/tmp/ovq-xdg-runtime';
  }
  if (
    !process.env.VK_ICD_FILENAMES &&
    !GPU_VULKAN_ICDS.some(existsSync) &&
    existsSync(SWIFTSHADER_ICD)
  ) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  }
}
