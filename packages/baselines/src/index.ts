// Intentionally empty: this package is specified by an open issue and has no implementation yet.
export {};
