// Per-test time limits. They guard against a hung kernel or worker, not for speed (speed is
// measured in benchmarks): CI runs several packages' suites at once on 2 cores, where tests that
// take 20 s alone were seen taking over 120 s.

/** The default limit of every test. */
export const TEST_TIMEOUT_MS = 300_000;

/** Tests that compile large GPU kernels or train a small model. */
export const SLOW_TEST_TIMEOUT_MS = 480_000;
