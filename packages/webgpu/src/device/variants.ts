// Kernel variants chosen from the device's limits: workgroup size and how many rows of keys and
// values a workgroup can stage in workgroup memory.
import { WebGpuError } from '../gpu/errors.js';
import type { DeviceCaps } from './limits.js';
import { kernelWorkgroupSize, type SubgroupLayout } from './subgroup-layout.js';

export type Variant = {
  /** Threads per workgroup for 1-D kernels (one thread per query, row or token). */
  workgroupSize: number;
  /** Bytes of workgroup storage a kernel may use. */
  workgroupStorage: number;
  /**
   * Subgroup kernels (the read's lane merge, the absorb's argmax): the device has `subgroups`,
   * its layout probe passed (probeSubgroupLayout) and they were not turned off
   * (`{subgroups: false}` or OVQ_WEBGPU_SUBGROUPS=0).
   */
  subgroups: boolean;
  /** Why the plain kernels were chosen (absent when `subgroups` is true). */
  subgroupsDisabledBecause?: string;
  /** The device's subgroup layout probe verdict, when the probe ran. */
  subgroupLayout?: SubgroupLayout;
};

export type VariantOptions = {
  /** false: the plain (workgroup-memory) kernels even where the device has `subgroups`. */
  subgroups?: boolean;
  /** The device's probe verdict; without an ok verdict the subgroup kernels are not chosen. */
  subgroupLayout?: SubgroupLayout;
};

/**
 * OVQ_WEBGPU_SUBGROUPS=0 in Node turns the subgroup kernels off (to compare or bisect);
 * acquireDevice then skips the layout probe.
 */
export function subgroupsTurnedOffByEnv(): boolean {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process
    ?.env;
  return env?.OVQ_WEBGPU_SUBGROUPS === '0';
}

export function chooseVariant(caps: DeviceCaps, options: VariantOptions = {}): Variant {
  const workgroupSize = kernelWorkgroupSize(caps);
  const layout = options.subgroupLayout;
  const why = !caps.subgroups
    ? "the device has no 'subgroups' feature"
    : options.subgroups === false
      ? 'turned off ({subgroups: false})'
      : subgroupsTurnedOffByEnv()
        ? 'turned off (OVQ_WEBGPU_SUBGROUPS=0)'
        : !layout
          ? 'subgroup layout not probed for this GPUDevice (await probeSubgroupLayout(device) before new GpuContext; acquireDevice() does)'
          : layout.workgroupSize !== workgroupSize
            ? `subgroup layout probed with workgroup size ${layout.workgroupSize}, kernels use ${workgroupSize}`
            : !layout.ok
              ? `subgroup layout probe failed: ${layout.reason}`
              : undefined;
  return {
    workgroupSize,
    workgroupStorage: caps.maxWorkgroupStorage,
    subgroups: why === undefined,
    ...(why === undefined ? {} : { subgroupsDisabledBecause: why }),
    ...(layout ? { subgroupLayout: layout } : {}),
  };
}

/**
 * Staged rows per tile. Small on purpose: SwiftShader's compile time grows steeply with workgroup
 * memory (64 rows of d = 64: 6 s per pipeline, 8 rows: 0.5 s), and with one thread per query a
 * 16-row tile already shares each load across the whole workgroup.
 */
export const TILE_CAP = 16;

/**
 * Rows of `floatsPerRow` floats that fit in workgroup storage, as a power of two in [1, cap].
 * `reservedFloats` are used by other shared arrays of the same kernel. Throws (naming the limit)
 * when not even one row fits.
 */
export function tileRows(
  variant: Variant,
  floatsPerRow: number,
  cap: number,
  reservedFloats = 0,
): number {
  const avail = Math.floor(variant.workgroupStorage / 4) - reservedFloats;
  if (floatsPerRow > avail) {
    // One row must fit: a 1-row tile that does not would fail to compile, far from the cause.
    throw new WebGpuError(
      'keyDim/valueDim',
      `one staged row needs ${4 * (floatsPerRow + reservedFloats)} bytes of workgroup storage but device.limits.maxComputeWorkgroupStorageSize is ${variant.workgroupStorage}; use smaller key/value dimensions`,
    );
  }
  let rows = 1;
  while (rows * 2 <= cap && rows * 2 * floatsPerRow <= avail) rows *= 2;
  return rows;
}
