/** The default limit of every test. */
export const TEST_TIMEOUT_MS: number;
/** Tests that compile large GPU kernels or train a small model. */
export const SLOW_TEST_TIMEOUT_MS: number;
