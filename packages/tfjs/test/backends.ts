// Backend set-up for the tests: cpu always, wasm when its binary loads; webgpu is started by
// webgpu-setup.ts in its own test file. Absence is reported, never silent.
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

export { tf };

let wasmReady: Promise<string | null> | null = null;

/** Loads the wasm backend once; resolves to null on success or the reason it is unavailable. */
export function loadWasm(): Promise<string | null> {
  wasmReady ??= (async () => {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dir = path.dirname(
        createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'),
      );
      wasm.setWasmPaths(`${dir}${path.sep}`);
      await tf.ready();
      return null;
    } catch (error) {
      return `wasm backend failed to load: ${(error as Error).message}`;
    }
  })();
  return wasmReady;
}

/** Switches to `name` (awaiting its initialisation); throws when it cannot. */
export async function useBackend(name: string): Promise<void> {
  if (name === 'wasm') {
    const reason = await loadWasm();
    if (reason) throw new Error(reason);
  }
  const ok = await tf.setBackend(name);
  if (!ok) throw new Error(`tf.setBackend('${name}') failed`);
  await tf.ready();
}

export const HOST_BACKENDS = ['cpu', 'wasm'] as const;

/** A float32 tensor of standard-normal values from a seeded generator. */
export function randomTensor(rng: () => number, shape: number[]): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(size);
  for (let i = 0; i < size; i += 2) {
    const u = Math.max(rng(), 1e-300);
    const r = Math.sqrt(-2 * Math.log(u));
    const th = 2 * Math.PI * rng();
    out[i] = r * Math.cos(th);
    if (i + 1 < size) out[i + 1] = r * Math.sin(th);
  }
  return tf.tensor(out, shape, 'float32');
}

/** A float32 tensor of values drawn uniformly from (lo, hi) (per-token gates, decays). */
export function uniformTensor(
  rng: () => number,
  shape: number[],
  lo: number,
  hi: number,
): tf.Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return tf.tensor(
    new Float32Array(size).map(() => lo + (hi - lo) * rng()),
    shape,
    'float32',
  );
}
