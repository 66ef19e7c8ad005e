// Selects the TensorFlow.js backend in Node through @ovq/train's startBackend: wasm by default
// (the fastest here: SIMD, and tfjs-wasm's threaded build cannot start in Node, so one thread for
// tfjs ops plus a worker pool for the OVQ kernels on every core), cpu, or webgpu through Dawn
// (the optional `webgpu` package) when an adapter exists. Without a GPU driver Dawn runs Vulkan
// on SwiftShader: slow, but the same code path (@ovq/webgpu's installNodeNavigatorGpu does that
// set-up). A backend that cannot start falls back (webgpu → wasm → cpu) with one printed line.
import { BACKENDS, DEFAULT_BACKEND, type StartedBackend, startBackend } from '@ovq/train';

export { DEFAULT_BACKEND };

/** Help text of --backend (and of a sweep file's `backend`). */
export const BACKEND_HELP = `${BACKENDS.join(' | ')} (default ${DEFAULT_BACKEND}: the fastest here — SIMD wasm with the OVQ kernels on a worker pool over every core; cpu is ~4× slower, webgpu without a GPU runs on SwiftShader)`;

let started: StartedBackend | null = null;

/**
 * Starts `name` (default wasm) and the OVQ kernels' worker pool; resolves to the backend in use.
 * `threads` sets the pool size (default: every hardware thread; 1 = no pool).
 */
export async function useBackend(name?: string, threads?: number): Promise<string> {
  await disposeBackend();
  started = await startBackend({
    backend: name ?? DEFAULT_BACKEND,
    threads,
    prepareWebGpu: async () => {
      try {
        const { installNodeNavigatorGpu } = await import('@ovq/webgpu');
        await installNodeNavigatorGpu();
      } catch (cause) {
        throw new Error(`Dawn could not start (${String(cause)})`);
      }
      await import('@tensorflow/tfjs-backend-webgpu');
    },
  });
  return started.backend;
}

/** Stops the worker pool started by useBackend (idempotent): call it on exit and on SIGINT. */
export async function disposeBackend(): Promise<void> {
  const current = started;
  started = null;
  await current?.dispose();
}
