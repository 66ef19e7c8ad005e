// Selects the TensorFlow.js backend in Node: cpu (always), wasm (SIMD, single thread in Node),
// or webgpu through Dawn (the optional `webgpu` package) when an adapter exists. Without a GPU
// driver Dawn runs Vulkan on SwiftShader: slow, but the same code path (@ovq/webgpu's
// installNodeNavigatorGpu does that set-up).
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { installNodeNavigatorGpu } from '@ovq/webgpu';
import * as tf from '@tensorflow/tfjs';

export async function useBackend(name: string): Promise<string> {
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
    wasm.setWasmPaths(`${dist}/`);
  } else if (name === 'webgpu') {
    try {
      await installNodeNavigatorGpu();
    } catch (cause) {
      throw new Error(`--backend webgpu: Dawn could not start (${String(cause)})`);
    }
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (!(await tf.setBackend(name)))
    throw new Error(`--backend ${name}: TensorFlow.js could not initialise it`);
  await tf.ready();
  return tf.getBackend();
}
