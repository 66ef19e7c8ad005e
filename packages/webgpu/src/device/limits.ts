// What a device offers, read once from `device.limits` / `device.features`, and the checks that
// turn "limits too small" into an error naming the limit, its value and what is needed.
import { WebGpuError } from '../gpu/errors.js';

export type DeviceCaps = {
  maxWorkgroupStorage: number;
  maxInvocations: number;
  maxWorkgroupSizeX: number;
  maxStorageBuffers: number;
  maxStorageBindingSize: number;
  maxBufferSize: number;
  maxWorkgroupsPerDimension: number;
  uniformAlignment: number;
  storageAlignment: number;
  timestamps: boolean;
  subgroups: boolean;
  shaderF16: boolean;
};

export function queryCaps(device: GPUDevice): DeviceCaps {
  const l = device.limits;
  return {
    maxWorkgroupStorage: l.maxComputeWorkgroupStorageSize,
    maxInvocations: l.maxComputeInvocationsPerWorkgroup,
    maxWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxStorageBuffers: l.maxStorageBuffersPerShaderStage,
    maxStorageBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
    uniformAlignment: l.minUniformBufferOffsetAlignment,
    storageAlignment: l.minStorageBufferOffsetAlignment,
    timestamps: device.features.has('timestamp-query'),
    subgroups: device.features.has('subgroups'),
    shaderF16: device.features.has('shader-f16'),
  };
}

/** The minimum every kernel in this package needs (WebGPU core defaults are above it). */
export const REQUIRED = {
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 64,
  maxComputeWorkgroupSizeX: 64,
  maxComputeWorkgroupStorageSize: 8192,
} as const;

export function checkRequiredLimits(device: GPUDevice): void {
  const limits = device.limits as unknown as Record<string, number>;
  for (const [name, need] of Object.entries(REQUIRED)) {
    const have = limits[name];
    if (!(have >= need)) {
      throw new WebGpuError(
        'device',
        `device.limits.${name} is ${have}; @ovq/webgpu needs ≥ ${need} (request it with requiredLimits, or use acquireDevice())`,
      );
    }
  }
}

/** Throws unless a buffer of `bytes` bytes fits the device's buffer and binding limits. */
export function checkBufferFits(caps: DeviceCaps, argument: string, bytes: number): void {
  const max = Math.min(caps.maxBufferSize, caps.maxStorageBindingSize);
  if (bytes > max) {
    throw new WebGpuError(
      argument,
      `needs a ${bytes}-byte buffer; this device allows at most ${max} bytes (maxStorageBufferBindingSize/maxBufferSize)`,
    );
  }
}
