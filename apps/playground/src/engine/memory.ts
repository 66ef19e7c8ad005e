// Numbers held between tokens (ALGORITHM.md §6), per head: OVQ's dictionary N·(dk + dv + 1) plus
// its pending buffer C·(dk + dv), against softmax attention's KV cache T·(dk + dv).
import { softmaxStateSize } from '@ovq/baselines';

export type MemoryNumbers = { ovq: number; kvCache: number };

export function memoryNumbers(
  dims: { keyDim: number; valueDim: number },
  rows: number,
  chunkSize: number,
  tokens: number,
): MemoryNumbers {
  const { keyDim: dk, valueDim: dv } = dims;
  return {
    ovq: rows * (dk + dv + 1) + chunkSize * (dk + dv),
    kvCache: softmaxStateSize(dims, {}, tokens),
  };
}

/** Bytes at float32, human-readable. */
export function formatBytes(numbers: number): string {
  const bytes = numbers * 4;
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}
