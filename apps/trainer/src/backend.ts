// Selects the TensorFlow.js backend in Node: cpu (always), wasm (SIMD, single thread in Node),
// or webgpu through Dawn (the `webgpu` package) when an adapter exists.
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
    Object.assign(globalThis, dawn.globals);
    (globalThis as { navigator?: unknown }).navigator = { gpu: dawn.create([]) };
    await import('@tensorflow/tfjs-backend-webgpu');
  }
  if (!(await tf.setBackend(name)))
    throw new Error(`--backend ${name}: TensorFlow.js could not initialise it`);
  await tf.ready();
  return tf.getBackend();
}
