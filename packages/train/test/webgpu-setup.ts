// Starts the tfjs webgpu backend in Node on Dawn (the `webgpu` package) through @ovq/webgpu's
// `installNodeNavigatorGpu`, as @ovq/tfjs's tests and the trainer do.

import { reportUnavailable } from '@ovq/vitest-config/unavailable';
import { installNodeNavigatorGpu } from '@ovq/webgpu';
import * as tf from '@tensorflow/tfjs-core';

/** Registers, initialises and selects the webgpu backend: null, or the reason it cannot. */
async function startWebGpu(): Promise<string | null> {
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
 * Under CI (which provides an adapter) a missing backend is a failure, not a skip.
 */
export async function webGpuOrSkip(): Promise<string | null> {
  const reason = await startWebGpu();
  if (reason) reportUnavailable(`[ovq/train] webgpu backend: ${reason}`);
  return reason;
}
