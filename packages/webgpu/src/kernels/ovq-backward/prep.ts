// Backward setup and bookkeeping kernels. The backward works on its own packed copy of the final
// dictionary, BD [heads, N, W] with W = dk + dv + 1 (key, value, count per row), and running sums
// S [heads, N, dk + dv] = count · row, so undoing an absorb is a subtraction (ALGORITHM.md §5).
// Packing keeps every kernel within WebGPU's default of 8 storage buffers. `update: ema` rows
// cannot be undone exactly, so they are rebuilt from checkpoints by replaying absorbs (below).
import type { Binding, Program } from '../../gpu/program.js';
import { TRACE_WGSL } from '../ovq-absorb/spawn.js';
import { memberFn } from '../ovq-absorb/update.js';

export class OvqPackDictionaryProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'Dk', kind: 'read' },
    { name: 'Dv', kind: 'read' },
    { name: 'cnt', kind: 'read' },
    { name: 'BD', kind: 'rw' },
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
// 2-D grid (x, y) over rows·W elements, head in z: rows·W can exceed one dimension's limit.
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let head = gid.z;
  let flat = gid.x + gid.y * nwg.x * WG_X;
  let e = flat % W;
  let i = flat / W;
  if (i >= P.rows) { return; }
  let c = cnt[head * P.N + i];
  var x = c;
  if (e < DK) { x = Dk[(head * P.N + i) * DK + e]; } else if (e < DK + DV) { x = Dv[(head * P.N + i) * DV + e - DK]; }
  BD[(head * P.N + i) * W + e] = x;
}`;
  }
}

/**
 * stats [heads, T, 4] = (lse, Δ = dy·y, dβ partial (written later), unused). The query-grad
 * kernel overwrites Δ with Σⱼ pⱼ dy·(vⱼ − m) recomputed from the same p (see read-grad.ts).
 */
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
 * Per-head dβ: one workgroup per head; each thread sums a strided slice of the per-query partials
 * with Kahan compensation, then a tree over the workgroup (fixed order, so deterministic). A
 * sequential f32 loop over T would lose ~T·2⁻²⁴ of the sum.
 */
export class OvqSumBetaProgram implements Program {
  readonly shaderKey = 'ovq-sum-beta-tree';
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
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.x;
  var s = 0.0;
  var comp = 0.0;
  if (head < P.heads) {
    for (var t = lid.x; t < P.T; t += 64u) {
      let y = stats[4u * (head * P.T + t) + 2u] - comp;
      let z = s + y;
      comp = (z - s) - y;
      s = z;
    }
  }
  part[lid.x] = s;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w = w / 2u) {
    if (lid.x < w) { part[lid.x] = part[lid.x] + part[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u && head < P.heads) { dbeta[head] = part[0]; }
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

/**
 * `update: ema` checkpoint: the dictionary (keys, values, counts) packed as in BD into slot
 * `slot` of CP [slots, heads, N, W], W = dk + dv + 1. Taken in the forward before every
 * ⌈√absorbs⌉-th absorb; the backward copies a slot into BD and replays absorbs from there.
 */
export class OvqCheckpointProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'Dk', kind: 'read' },
    { name: 'Dv', kind: 'read' },
    { name: 'cnt', kind: 'read' },
    { name: 'CP', kind: 'rw' },
  ];
  readonly params = [
    ['rows', 'u32'],
    ['N', 'u32'],
    ['slot', 'u32'],
    ['heads', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-checkpoint-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dk}u;
const DV: u32 = ${this.dv}u;
const W: u32 = DK + DV + 1u;
// 2-D grid (x, y) over rows·W elements, head in z (see the pack kernel).
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let head = gid.z;
  let flat = gid.x + gid.y * nwg.x * WG_X;
  let e = flat % W;
  let i = flat / W;
  if (i >= P.rows) { return; }
  var x = cnt[head * P.N + i];
  if (e < DK) { x = Dk[(head * P.N + i) * DK + e]; } else if (e < DK + DV) { x = Dv[(head * P.N + i) * DV + e - DK]; }
  CP[((P.slot * P.heads + head) * P.N + i) * W + e] = x;
}`;
  }
}

/**
 * `update: ema`, backward of absorb a (one thread per touched row and element, so each G and
 * dKV element has one writer): row i after the absorb is (1−η)·row + η/m·Σ members, so each of
 * its m members receives η/m·G[i] and G[i] becomes (1−η)·G[i] (unchanged when m = 0); a row the
 * absorb spawned passes that G on to its seed (ALGORITHM.md §4 d, §5).
 */
export class OvqEmaScatterProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'trace', kind: 'read', type: 'i32' },
    { name: 'G', kind: 'rw' },
    { name: 'dKV', kind: 'rw' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['cs', 'u32'],
    ['n', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
    ['rate', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-ema-scatter-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const E: u32 = ${this.dk + this.dv}u;
${memberFn(this.chunk)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let e = gid.x % E;
  let g = gid.x / E;
  if (g >= groupCount(head)) { return; }
  let b = recordBase(head);
  let i = u32(trace[b + T_GROUP_ROW + g]);
  let start = u32(trace[b + T_GROUP_START + g]);
  let end = start + u32(trace[b + T_GROUP_COUNT + g]);
  var members = 0.0;
  for (var p = start; p < end; p++) {
    if (!isSeed(head, u32(trace[b + T_ORDER + p]), i)) { members = members + 1.0; }
  }
  let gAt = (head * P.N + i) * E + e;
  let gi = G[gAt];
  var kept = gi;
  var share = 0.0;
  if (members > 0.0) { kept = (1.0 - P.rate) * gi; share = gi * (P.rate / members); }
  for (var p = start; p < end; p++) {
    let j = u32(trace[b + T_ORDER + p]);
    let at = (head * P.L + P.cs + j) * E + e;
    if (isSeed(head, j, i)) { dKV[at] = dKV[at] + kept; } else { dKV[at] = dKV[at] + share; }
  }
  G[gAt] = kept;
}`;
  }
}

/**
 * Replay of absorb a on the packed dictionary BD from its recorded decisions (one thread per
 * touched row and element): a spawned row starts as its seed with count 1, then every row with
 * m > 0 members moves as in the forward, members summed in token order: `mode` 0 (`update: ema`)
 * row + η·(Σ members / m − row) and count + m in one dispatch; for the running mean the values
 * (mode 1: row + (Σ members − m·row)/(count + m), the forward's formula) and then the counts
 * (mode 2) in two dispatches, so no thread reads a count another thread of its dispatch writes.
 */
export class OvqReplayAbsorbProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'trace', kind: 'read', type: 'i32' },
    { name: 'BD', kind: 'rw' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['cs', 'u32'],
    ['n', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
    ['rate', 'f32'],
    ['mode', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-replay-absorb-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dk}u;
const DV: u32 = ${this.dv}u;
const E: u32 = DK + DV;
const W: u32 = E + 1u;
${memberFn(this.chunk)}
fn token(head: u32, j: u32, e: u32) -> f32 {
  if (e < DK) { return kw[(head * P.L + P.cs + j) * DK + e]; }
  return vw[(head * P.L + P.cs + j) * DV + e - DK];
}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let e = gid.x % W;
  let g = gid.x / W;
  if (g >= groupCount(head)) { return; }
  let b = recordBase(head);
  let i = u32(trace[b + T_GROUP_ROW + g]);
  let start = u32(trace[b + T_GROUP_START + g]);
  let end = start + u32(trace[b + T_GROUP_COUNT + g]);
  let at = (head * P.N + i) * W + e;
  if ((P.mode == 1u && e == E) || (P.mode == 2u && e != E)) { return; }
  var s = 0.0;
  var members = 0.0;
  var x = 0.0;
  var count = 1.0;
  if (i >= P.n) {
    let seed = u32(trace[b + T_SPAWNED + (i - P.n)]);
    x = 1.0;
    if (e < E) { x = token(head, seed, e); }
  } else {
    x = BD[at];
    count = BD[(head * P.N + i) * W + E];
  }
  for (var p = start; p < end; p++) {
    let j = u32(trace[b + T_ORDER + p]);
    if (!isSeed(head, j, i)) {
      members = members + 1.0;
      if (e < E) { s = s + token(head, j, e); }
    }
  }
  var y = x;
  if (e == E) {
    y = x + members;
  } else if (members > 0.0) {
    if (P.mode == 0u) { y = x + P.rate * (s / members - x); } else { y = x + (s - members * x) / (count + members); }
  }
  BD[at] = y;
}`;
  }
}
