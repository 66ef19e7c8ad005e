import type { UserConfig } from 'vitest/config';

export function ovqVitestConfig(test?: UserConfig['test']): UserConfig;
