// The subgroup kernels (the read's lane merge, the absorb's argmax) assume a layout WGSL does not
// promise: a subgroup is a run of consecutive local_invocation_index values aligned to the
// subgroup size. An adapter that laid subgroups out otherwise would merge partials of different
// queries silently. So each device runs a tiny probe once, with the kernels' workgroup shape, and
// the subgroup kernels are chosen only when its read-back shows that layout.
import { type DeviceCaps, queryCaps } from './limits.js';

/** What the probe read back, one entry per invocation, workgroup after workgroup. */
export type SubgroupProbeData = {
  /** Invocations per workgroup (the probe's @workgroup_size, 1-D as the kernels'). */
  workgroupSize: number;
  /** local_invocation_index (the kernels use local_invocation_id.x; the probe checks both agree). */
  localIndex: ArrayLike<number>;
  subgroupInvocationId: ArrayLike<number>;
  subgroupSize: ArrayLike<number>;
  /** subgroupShuffleXor(lid, 1) and (lid, 2): the read's butterflies over RL ≤ 4 lanes. */
  shuffleXor1: ArrayLike<number>;
  shuffleXor2: ArrayLike<number>;
  /** subgroupBroadcastFirst(lid): the absorb's subgroup leader, whose slot is tid / ssize. */
  broadcastFirst: ArrayLike<number>;
};

export type SubgroupLayoutCheck =
  | { ok: true; subgroupSize: number }
  | { ok: false; reason: string };

const FIELDS = [
  'localIndex',
  'subgroupInvocationId',
  'subgroupSize',
  'shuffleXor1',
  'shuffleXor2',
  'broadcastFirst',
] as const;

/**
 * Pure decision on the probe's read-back: ok (with the subgroup size) when every workgroup is cut
 * into subgroups of consecutive invocations aligned to the size, the xor shuffles reach lid ^ m,
 * and the absorb's slots tid / ssize cover every subgroup; otherwise the first violation.
 */
export function checkSubgroupLayout(data: SubgroupProbeData): SubgroupLayoutCheck {
  const wg = data.workgroupSize;
  const n = data.localIndex.length;
  if (!Number.isInteger(wg) || wg < 1 || n === 0 || n % wg !== 0) {
    return {
      ok: false,
      reason: `probe read back ${n} invocations for workgroup size ${wg}; expected a positive multiple`,
    };
  }
  for (const f of FIELDS) {
    if (data[f].length !== n) {
      return { ok: false, reason: `probe read back ${data[f].length} ${f} values; expected ${n}` };
    }
  }
  let size = -1;
  for (let g = 0; g < n; g++) {
    const i = g % wg;
    const at = `invocation ${i} of workgroup ${Math.floor(g / wg)}`;
    if (data.localIndex[g] !== i) {
      return {
        ok: false,
        reason: `${at} reported local index ${data.localIndex[g]} (not written, or local_invocation_index ≠ local_invocation_id.x)`,
      };
    }
    const s = data.subgroupSize[g];
    if (size < 0) size = s;
    if (!(Number.isInteger(s) && s >= 4 && s <= 128 && (s & (s - 1)) === 0)) {
      return {
        ok: false,
        reason: `${at} reported subgroup size ${s}; expected a power of two in [4, 128]`,
      };
    }
    if (s !== size) {
      return {
        ok: false,
        reason: `subgroup sizes differ within one dispatch (${size} and ${s} at ${at})`,
      };
    }
    const sid = data.subgroupInvocationId[g];
    if (sid !== i % s) {
      return {
        ok: false,
        reason: `subgroups are not runs of consecutive invocations aligned to the subgroup size ${s}: ${at} has subgroup_invocation_id ${sid}, expected ${i % s}`,
      };
    }
    const first = data.broadcastFirst[g];
    if (first !== i - (i % s)) {
      return {
        ok: false,
        reason: `${at}: subgroupBroadcastFirst(lid) gave ${first}, expected ${i - (i % s)} (the absorb's argmax slot tid / subgroup_size would not name its subgroup)`,
      };
    }
    for (const [m, got] of [
      [1, data.shuffleXor1[g]],
      [2, data.shuffleXor2[g]],
    ] as const) {
      // A partner past the workgroup's end (a partial subgroup) is inactive: nothing to check.
      if ((i ^ m) >= wg) continue;
      if (got !== (i ^ m)) {
        return {
          ok: false,
          reason: `${at}: subgroupShuffleXor(lid, ${m}) gave ${got}, expected ${i ^ m} (the read's lane merge would mix queries)`,
        };
      }
    }
  }
  // The absorb's thread 0 scans ⌊wg / size⌋ slots: a partial last subgroup after full ones is missed.
  if (wg > size && wg % size !== 0) {
    return {
      ok: false,
      reason: `workgroup size ${wg} is not a multiple of the subgroup size ${size}: the absorb's argmax would miss the partial last subgroup`,
    };
  }
  return { ok: true, subgroupSize: size };
}

/** Threads per workgroup of the 1-D kernels (the read and the absorb): the probe uses the same. */
export function kernelWorkgroupSize(caps: DeviceCaps): number {
  // One thread per query/row/token: 64 fits every adapter (compat's default allows 128) and is a
  // multiple of every subgroup size; larger groups only add idle threads for chunk-sized work.
  return Math.min(64, caps.maxInvocations, caps.maxWorkgroupSizeX);
}

/** A device's probe verdict and the workgroup size it was taken with. */
export type SubgroupLayout = SubgroupLayoutCheck & { workgroupSize: number };

const PROBE_GROUPS = 4;

function probeShader(wg: number): string {
  return `enable subgroups;
@group(0) @binding(0) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(${wg}, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(local_invocation_index) li: u32,
        @builtin(workgroup_id) wid: vec3u, @builtin(subgroup_invocation_id) sid: u32,
        @builtin(subgroup_size) ss: u32) {
  let x1 = subgroupShuffleXor(lid.x, 1u);
  let x2 = subgroupShuffleXor(lid.x, 2u);
  let first = subgroupBroadcastFirst(lid.x);
  var idx = li;
  if (li != lid.x) { idx = 0xffffffffu; }
  let b = (wid.x * ${wg}u + li) * 6u;
  out[b] = idx;
  out[b + 1u] = sid;
  out[b + 2u] = ss;
  out[b + 3u] = x1;
  out[b + 4u] = x2;
  out[b + 5u] = first;
}
`;
}

/** Splits the probe's interleaved read-back (6 u32 per invocation) into SubgroupProbeData. */
export function probeDataFromWords(words: Uint32Array, workgroupSize: number): SubgroupProbeData {
  const n = Math.floor(words.length / 6);
  const field = (k: number) => Uint32Array.from({ length: n }, (_, g) => words[g * 6 + k]);
  return {
    workgroupSize,
    localIndex: field(0),
    subgroupInvocationId: field(1),
    subgroupSize: field(2),
    shuffleXor1: field(3),
    shuffleXor2: field(4),
    broadcastFirst: field(5),
  };
}

async function runProbe(device: GPUDevice): Promise<SubgroupLayout> {
  const workgroupSize = kernelWorkgroupSize(queryCaps(device));
  const fail = (reason: string): SubgroupLayout => ({ ok: false, reason, workgroupSize });
  if (!device.features.has('subgroups')) return fail("the device has no 'subgroups' feature");
  const bytes = PROBE_GROUPS * workgroupSize * 6 * 4;
  let out: GPUBuffer | null = null;
  let staging: GPUBuffer | null = null;
  try {
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    out = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
      mappedAtCreation: true,
      label: 'ovq-subgroup-probe',
    });
    // Poisoned: an invocation that writes nothing fails the check.
    new Uint32Array(out.getMappedRange()).fill(0xffffffff);
    out.unmap();
    staging = device.createBuffer({
      size: bytes,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const pipeline = device.createComputePipeline({
      label: 'ovq-subgroup-probe',
      layout: 'auto',
      compute: {
        module: device.createShaderModule({ code: probeShader(workgroupSize) }),
        entryPoint: 'main',
      },
    });
    const bind = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: out } }],
    });
    const enc = device.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    pass.dispatchWorkgroups(PROBE_GROUPS);
    pass.end();
    enc.copyBufferToBuffer(out, 0, staging, 0, bytes);
    device.queue.submit([enc.finish()]);
    const validation = device.popErrorScope();
    const oom = device.popErrorScope();
    const errors = (await Promise.all([validation, oom])).filter((e) => e !== null);
    if (errors.length > 0) return fail(`probe shader failed: ${errors[0]?.message}`);
    await staging.mapAsync(GPUMapMode.READ);
    const words = new Uint32Array(staging.getMappedRange().slice(0));
    staging.unmap();
    const check = checkSubgroupLayout(probeDataFromWords(words, workgroupSize));
    return { ...check, workgroupSize };
  } catch (cause) {
    return fail(`probe failed: ${String(cause)}`);
  } finally {
    out?.destroy();
    staging?.destroy();
  }
}

const probes = new WeakMap<GPUDevice, Promise<SubgroupLayout>>();
const settled = new WeakMap<GPUDevice, SubgroupLayout>();

/** How long the probe may take before it counts as failed (a hung driver must not hang start-up). */
export const PROBE_TIMEOUT_MS = 10_000;

/**
 * Runs the subgroup layout probe once per GPUDevice (cached) and resolves to its verdict; never
 * rejects (a failed probe is a failed verdict, and so is one that takes longer than
 * `timeoutMs`, default PROBE_TIMEOUT_MS). `acquireDevice()` awaits it; call it yourself
 * before `new GpuContext(device)` for a device you acquired another way, or the context keeps the
 * plain kernels.
 */
export function probeSubgroupLayout(
  device: GPUDevice,
  options: { timeoutMs?: number } = {},
): Promise<SubgroupLayout> {
  let p = probes.get(device);
  if (!p) {
    const timeoutMs = options.timeoutMs ?? PROBE_TIMEOUT_MS;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timedOut = new Promise<SubgroupLayout>((resolve) => {
      timer = setTimeout(
        () =>
          resolve({
            ok: false,
            reason: `probe did not finish within ${timeoutMs} ms`,
            workgroupSize: kernelWorkgroupSize(queryCaps(device)),
          }),
        timeoutMs,
      );
      // In Node, a pending probe timer must not keep the process alive on its own.
      (timer as { unref?: () => void }).unref?.();
    });
    p = Promise.race([runProbe(device), timedOut]).then((v) => {
      clearTimeout(timer);
      settled.set(device, v);
      return v;
    });
    probes.set(device, p);
  }
  return p;
}

/** The device's probe verdict if the probe has finished, else undefined (synchronous). */
export function subgroupLayoutOf(device: GPUDevice): SubgroupLayout | undefined {
  return settled.get(device);
}
