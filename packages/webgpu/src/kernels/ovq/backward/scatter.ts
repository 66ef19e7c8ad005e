// The carried gradient G of the dictionary rows handed to the tokens an absorb took in
// (ALGORITHM.md §5): plain scatter for the running mean, η/m shares for `update: ema`.
import type { Binding, Program } from '../../../gpu/program.js';
import { TRACE_WGSL } from '../absorb/spawn.js';
import { memberFn } from '../absorb/update.js';

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
