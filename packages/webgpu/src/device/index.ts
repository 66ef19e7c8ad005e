export {
  type AcquiredDevice,
  type AcquireOptions,
  acquireDevice,
  getGpu,
  type NodeBackend,
} from './acquire.js';
export { checkRequiredLimits, type DeviceCaps, queryCaps, REQUIRED } from './limits.js';
export { installNodeNavigatorGpu, prepareHeadlessDawn } from './node.js';
export {
  checkSubgroupLayout,
  probeSubgroupLayout,
  type SubgroupLayout,
  type SubgroupLayoutCheck,
  type SubgroupProbeData,
  subgroupLayoutOf,
} from './subgroup-layout.js';
export { chooseVariant, tileRows, type Variant, type VariantOptions } from './variants.js';
