// Starts the tfjs webgpu backend in Node on Dawn (the `webgpu` package) through @ovq/webgpu's
// `installNodeNavigatorGpu` (headless set-up; SwiftShader when there is no GPU driver, see
// /work/shared/WEBGPU-ON-CPU.md). Resolves to null when ready, or the reason it is unavailable.
import { reportUnavailable } from '@ovq/vitest-config/unavailable';
import { installNodeNavigatorGpu } from '@ovq/webgpu';
import { tf } from './backends.js';

export async function startWebGpu(): Promise<string | null> {
  try {
    await installNodeNavigatorGpu();
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
 * Under CI (`.ci/run` provides an adapter) a missing backend is a failure, not a skip.
 */
export async function webGpuOrSkip(): Promise<string | null> {
  const reason = await startWebGpu();
  if (reason) reportUnavailable(`[ovq/tfjs] webgpu backend: ${reason}`);
  return reason;
}
