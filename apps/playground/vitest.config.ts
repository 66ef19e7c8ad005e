import { ovqVitestConfig } from '@ovq/vitest-config';

export default ovqVitestConfig();
