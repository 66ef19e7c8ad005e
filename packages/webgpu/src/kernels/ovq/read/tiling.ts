// Read-kernel layout per adapter: a small table keyed on the device limits (workgroup storage and
// invocations), then sized to the head dimensions. Software adapters land in the same rows as GPUs
// with the same limits; the values were picked by measuring on llvmpipe and SwiftShader (see
// BENCHMARKS.md) and are meant to be re-tuned on real GPUs with bench/gpu-check.sh.
import type { DeviceCaps } from '../../../device/limits.js';
import { TILE_CAP, tileRows, type Variant } from '../../../device/variants.js';
import type { ReadTiling } from './read.js';

type Row = {
  /** Applies when the device has at least this much workgroup storage and these invocations. */
  minStorage: number;
  minInvocations: number;
  lanes: number;
  /** Queries per thread by dk + dv: the first entry whose bound is ≥ dk + dv. */
  perThread: readonly (readonly [number, number])[];
  rowsPerSplit: number;
  maxSplits: number;
};

const TABLE: readonly Row[] = [
  // Core-class limits (32 KiB, 256 invocations). Two lanes × two queries per thread measured
  // fastest on llvmpipe (T = 2048, d = 64: 1.7× one query per thread; 4 × 4 was slower and took
  // SwiftShader minutes to compile).
  {
    minStorage: 32768,
    minInvocations: 256,
    lanes: 2,
    perThread: [
      [256, 2],
      [Number.POSITIVE_INFINITY, 1],
    ],
    rowsPerSplit: 256,
    maxSplits: 16,
  },
  // Compatibility-class limits (16 KiB, 128 invocations).
  {
    minStorage: 0,
    minInvocations: 0,
    lanes: 2,
    perThread: [
      [256, 2],
      [Number.POSITIVE_INFINITY, 1],
    ],
    rowsPerSplit: 512,
    maxSplits: 8,
  },
];

export function readTiling(caps: DeviceCaps, variant: Variant, dk: number, dv: number): ReadTiling {
  const row = TABLE.find(
    (r) => caps.maxWorkgroupStorage >= r.minStorage && caps.maxInvocations >= r.minInvocations,
  ) as Row;
  const padded = 4 * Math.ceil(dk / 4) + 4 * Math.ceil(dv / 4);
  // Throws naming maxComputeWorkgroupStorageSize when not even one row fits.
  const tile = tileRows(variant, padded + 2, TILE_CAP);
  const threads = variant.workgroupSize;
  const lanes = Math.min(row.lanes, tile, threads);
  const perThread = (row.perThread.find(([bound]) => dk + dv <= bound) as [number, number])[1];
  // Lanes merge in a subgroup only when they surely share one: WebGPU subgroups have ≥ 4 invocations.
  const subgroups = variant.subgroups && lanes > 1 && lanes <= 4;
  return {
    tile,
    lanes,
    perThread,
    threads,
    rowsPerSplit: row.rowsPerSplit,
    maxSplits: row.maxSplits,
    subgroups,
    partials: subgroups ? 1 : lanes,
  };
}
