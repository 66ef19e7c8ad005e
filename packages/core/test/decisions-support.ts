// The decision verifier lives in src/testing/decisions.ts (exported as `@ovq/core/testing`, so
// the other packages' fast paths are checked the same way).
export * from '../src/testing/decisions.js';
