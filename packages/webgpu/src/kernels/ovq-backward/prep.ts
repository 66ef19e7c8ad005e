// Backward setup and bookkeeping kernels. The backward works on its own packed copy of the final
// dictionary, BD [heads, N, W] with W = dk + dv + 1 (key, value, count per row), and running sums
// S [heads, N, dk + dv] = count · row, so undoing an absorb is a subtraction (ALGORITHM.md §5).
// Packing keeps every kernel within WebGPU's default of 8 storage buffers.
import type { Binding, Program } from '../../gpu/program.js';
import { TRACE_WGSL } from '../ovq-absorb/spawn.js';

export class OvqPackDictionaryProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'Dk', kind: 'read' },
    { name: 'Dv', kind: 'read' },
    { name: 'cnt', kind: 'read' },
    { name: 'BD', kind: 'rw' },
    { name: 'S', kind: 'rw' },
  ];
  readonly params = [
    ['rows', 'u32'],
    ['N', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-pack-dict-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dk}u;
const DV: u32 = ${this.dv}u;
const W: u32 = DK + DV + 1u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let e = gid.x % W;
  let i = gid.x / W;
  if (i >= P.rows) { return; }
  let c = cnt[head * P.N + i];
  var x = c;
  if (e < DK) { x = Dk[(head * P.N + i) * DK + e]; } else if (e < DK + DV) { x = Dv[(head * P.N + i) * DV + e - DK]; }
  BD[(head * P.N + i) * W + e] = x;
  if (e < DK + DV) { S[(head * P.N + i) * (DK + DV) + e] = c * x; }
}`;
  }
}

/** stats [heads, T, 4] = (lse, Δ = dy·y, dβ partial (written later), unused). */
export class OvqStatsProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'lse', kind: 'read' },
    { name: 'out', kind: 'read' },
    { name: 'dout', kind: 'read' },
    { name: 'stats', kind: 'rw' },
  ];
  readonly params = [['rows', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-stats-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DV: u32 = ${this.dv}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG_X;
  if (r >= P.rows) { return; }
  var s = 0.0;
  for (var d = 0u; d < DV; d++) { s = s + dout[r * DV + d] * out[r * DV + d]; }
  stats[4u * r] = lse[r];
  stats[4u * r + 1u] = s;
  stats[4u * r + 2u] = 0.0;
  stats[4u * r + 3u] = 0.0;
}`;
  }
}

/** Tokens of absorb a receive G of the row they joined: dKV[token] += G[row] (ALGORITHM.md §5). */
export class OvqScatterGradProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'trace', kind: 'read', type: 'i32' },
    { name: 'G', kind: 'read' },
    { name: 'dKV', kind: 'rw' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['cs', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-scatter-grad-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const E: u32 = ${this.dk + this.dv}u;
const C: u32 = ${this.chunk}u;
${TRACE_WGSL}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let e = gid.x % E;
  let j = gid.x / E;
  if (j >= C) { return; }
  let row = u32(trace[(head * P.A + P.a) * TS + j]);
  let at = (head * P.L + P.cs + j) * E + e;
  dKV[at] = dKV[at] + G[(head * P.N + row) * E + e];
}`;
  }
}

/**
 * Undoes absorb a on the packed dictionary, one thread per (touched row, element), gathering the
 * row's members from the sorted lists in `trace`: S[i] −= Σ members (seeds included), then
 * row = S / (count − members) (0 for a row this absorb created). Counts change in OvqUndoCounts.
 */
export class OvqUndoProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'trace', kind: 'read', type: 'i32' },
    { name: 'BD', kind: 'rw' },
    { name: 'S', kind: 'rw' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['cs', 'u32'],
    ['rows', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-undo-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dk}u;
const DV: u32 = ${this.dv}u;
const E: u32 = DK + DV;
const W: u32 = E + 1u;
const C: u32 = ${this.chunk}u;
${TRACE_WGSL}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let e = gid.x % E;
  let g = gid.x / E;
  let b = (head * P.A + P.a) * TS;
  if (g >= u32(trace[b + T_GROUPS])) { return; }
  let i = u32(trace[b + T_GROUP_ROW + g]);
  let start = u32(trace[b + T_GROUP_START + g]);
  let members = f32(trace[b + T_GROUP_COUNT + g]);
  var s = 0.0;
  for (var p = start; p < start + u32(members); p++) {
    let j = u32(trace[b + T_ORDER + p]);
    if (e < DK) { s = s + kw[(head * P.L + P.cs + j) * DK + e]; } else { s = s + vw[(head * P.L + P.cs + j) * DV + e - DK]; }
  }
  let before = BD[(head * P.N + i) * W + E] - members;
  let sAt = (head * P.N + i) * E + e;
  let rest = S[sAt] - s;
  S[sAt] = rest;
  var x = 0.0;
  if (before > 0.0) { x = rest / before; }
  BD[(head * P.N + i) * W + e] = x;
}`;
  }
}

export class OvqUndoCountsProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'trace', kind: 'read', type: 'i32' },
    { name: 'BD', kind: 'rw' },
  ];
  readonly params = [
    ['rows', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-undo-counts-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const W: u32 = ${this.dk + this.dv + 1}u;
const C: u32 = ${this.chunk}u;
${TRACE_WGSL}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let g = gid.x;
  let b = (head * P.A + P.a) * TS;
  if (g >= u32(trace[b + T_GROUPS])) { return; }
  let i = u32(trace[b + T_GROUP_ROW + g]);
  let members = f32(trace[b + T_GROUP_COUNT + g]);
  let at = (head * P.N + i) * W + W - 1u;
  BD[at] = BD[at] - members;
}`;
  }
}

/** Per-head dβ: the per-query partials summed in token order (deterministic). */
export class OvqSumBetaProgram implements Program {
  readonly shaderKey = 'ovq-sum-beta';
  readonly bindings: Binding[] = [
    { name: 'stats', kind: 'read' },
    { name: 'dbeta', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['heads', 'u32'],
  ] as const;
  readonly workgroupSize = [64, 1, 1] as const;
  body(): string {
    return /* wgsl */ `
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.x;
  if (head >= P.heads) { return; }
  var s = 0.0;
  for (var t = 0u; t < P.T; t++) { s = s + stats[4u * (head * P.T + t) + 2u]; }
  dbeta[head] = s;
}`;
  }
}

/** dk = normalize-backward of the packed dKV key part (or a copy), dv = its value part. */
export class OvqGradOutProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'k', kind: 'read' },
    { name: 'dKV', kind: 'read' },
    { name: 'dk', kind: 'rw' },
    { name: 'dv', kind: 'rw' },
  ];
  readonly params = [['rows', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dkDim: number,
    readonly dvDim: number,
    readonly normalize: boolean,
    wg: number,
  ) {
    this.shaderKey = `ovq-grad-out-dk${dkDim}-dv${dvDim}-n${normalize ? 1 : 0}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dkDim}u;
const DV: u32 = ${this.dvDim}u;
const E: u32 = DK + DV;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG_X;
  if (r >= P.rows) { return; }
  for (var d = 0u; d < DV; d++) { dv[r * DV + d] = dKV[r * E + DK + d]; }
  ${
    this.normalize
      ? `var sq = 0.0;
  for (var d = 0u; d < DK; d++) { let x = k[r * DK + d]; sq = sq + x * x; }
  let norm = sqrt(sq);
  let divisor = max(norm, 1e-12);
  var proj = 0.0;
  // Below the clamp the divisor is constant, so the projection term vanishes.
  if (norm > 1e-12) { for (var d = 0u; d < DK; d++) { proj = proj + (k[r * DK + d] / divisor) * dKV[r * E + d]; } }
  for (var d = 0u; d < DK; d++) { dk[r * DK + d] = (dKV[r * E + d] - (k[r * DK + d] / divisor) * proj) / divisor; }`
      : 'for (var d = 0u; d < DK; d++) { dk[r * DK + d] = dKV[r * E + d]; }'
  }
}`;
  }
}
