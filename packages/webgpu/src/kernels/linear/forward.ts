// Chunked causal linear attention forward: y_t = Σ_{s≤t} (q_t·k_s) v_s (identity feature map,
// no normaliser). Three parallel steps instead of a sequential scan over tokens:
// 1. per chunk c, H_c = Σ_{s∈c} k_s v_sᵀ; 2. exclusive prefix over chunks (one thread per state
// entry, chunks in order: deterministic); 3. y_t = q_tᵀ S_{c(t)} + causal in-chunk part.
import type { Binding, Program } from '../../gpu/program.js';

export class LinearChunkStateProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'k', kind: 'read' },
    { name: 'v', kind: 'read' },
    { name: 'H', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['C', 'u32'],
    ['chunks', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `linear-chunk-state-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dk}u;
const DV: u32 = ${this.dv}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let c = gid.y;
  let head = gid.z;
  if (e >= DK * DV) { return; }
  let i = e / DV;
  let j = e % DV;
  let s0 = c * P.C;
  let s1 = min(P.T, s0 + P.C);
  var acc = 0.0;
  for (var s = s0; s < s1; s++) { acc = acc + k[(head * P.T + s) * DK + i] * v[(head * P.T + s) * DV + j]; }
  H[((head * P.chunks + c) * DK + i) * DV + j] = acc;
}`;
  }
}

export class LinearPrefixProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [{ name: 'H', kind: 'rw' }];
  readonly params = [['chunks', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `linear-prefix-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dk}u;
const DV: u32 = ${this.dv}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let e = gid.x;
  let head = gid.y;
  if (e >= DK * DV) { return; }
  var run = 0.0;
  for (var c = 0u; c < P.chunks; c++) {
    let at = (head * P.chunks + c) * DK * DV + e;
    let h = H[at];
    H[at] = run;
    run = run + h;
  }
}`;
  }
}

export class LinearOutputProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'q', kind: 'read' },
    { name: 'k', kind: 'read' },
    { name: 'v', kind: 'read' },
    { name: 'S', kind: 'read' },
    { name: 'out', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['C', 'u32'],
    ['chunks', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `linear-output-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dk}u;
const DV: u32 = ${this.dv}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.x;
  let head = gid.y;
  if (t >= P.T) { return; }
  var qr: array<f32, DK>;
  var acc: array<f32, DV>;
  for (var d = 0u; d < DK; d++) { qr[d] = q[(head * P.T + t) * DK + d]; }
  let c = t / P.C;
  let sBase = (head * P.chunks + c) * DK * DV;
  for (var i = 0u; i < DK; i++) {
    for (var j = 0u; j < DV; j++) { acc[j] = acc[j] + qr[i] * S[sBase + i * DV + j]; }
  }
  for (var s = c * P.C; s <= t; s++) {
    var dot = 0.0;
    for (var d = 0u; d < DK; d++) { dot = dot + qr[d] * k[(head * P.T + s) * DK + d]; }
    for (var j = 0u; j < DV; j++) { acc[j] = acc[j] + dot * v[(head * P.T + s) * DV + j]; }
  }
  for (var j = 0u; j < DV; j++) { out[(head * P.T + t) * DV + j] = acc[j]; }
}`;
  }
}
