// The project's rule for tests that need something the machine may lack (a WebGPU adapter,
// Chromium): elsewhere they skip with a printed reason; under CI, where `.ci/run` provides it,
// its absence is a failure.

/** @param {string} message what is missing, e.g. `[ovq/tfjs] chromium not found at …` */
export function reportUnavailable(message) {
  if (process.env.CI) {
    throw new Error(`${message} (CI requires it; run .ci/webgpu-setup.sh)`);
  }
  console.warn(`${message}; these tests are skipped`);
}
