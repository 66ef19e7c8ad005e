// Absorb step 4 (batch M-step), deterministic without float atomics: one thread per (touched
// row, element) gathers its row's members from the sorted lists in `trace` (token order) and moves
// the row to the running mean (D += (Σx − m·D)/c) or by the EMA rate. Counts change in a second
// pass (OvqCountsProgram) so no thread reads a count another thread of the same dispatch writes.
import type { Binding, Program } from '../../gpu/program.js';
import { TRACE_WGSL } from './spawn.js';

/** Shared WGSL: the touched-row lists of absorb a, and whether token j seeded its row. */
export function memberFn(chunk: number): string {
  return `
const C: u32 = ${chunk}u;
${TRACE_WGSL}
fn recordBase(head: u32) -> u32 { return (head * P.A + P.a) * TS; }
fn groupCount(head: u32) -> u32 { return u32(trace[recordBase(head) + T_GROUPS]); }
// A seed is the token that created its row at this absorb: row ≥ n and spawned[row − n] == j.
fn isSeed(head: u32, j: u32, row: u32) -> bool {
  return row >= P.n && u32(trace[recordBase(head) + T_SPAWNED + (row - P.n)]) == j;
}
`;
}

export class OvqUpdateProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'trace', kind: 'read', type: 'i32' },
    { name: 'cnt', kind: 'read' },
    { name: 'Dk', kind: 'rw' },
    { name: 'Dv', kind: 'rw' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['cs', 'u32'],
    ['n', 'u32'],
    ['rows', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
    ['ema', 'u32'],
    ['rate', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];

  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    readonly wg: number,
  ) {
    this.shaderKey = `ovq-update-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    const { dk, dv, chunk } = this;
    return /* wgsl */ `
const DK: u32 = ${dk}u;
const DV: u32 = ${dv}u;
${memberFn(chunk)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let e = gid.x % (DK + DV);
  let g = gid.x / (DK + DV);
  if (g >= groupCount(head)) { return; }
  let b = recordBase(head);
  let i = u32(trace[b + T_GROUP_ROW + g]);
  let start = u32(trace[b + T_GROUP_START + g]);
  let end = start + u32(trace[b + T_GROUP_COUNT + g]);
  var s = 0.0;
  var members = 0.0;
  for (var p = start; p < end; p++) {
    let j = u32(trace[b + T_ORDER + p]);
    if (!isSeed(head, j, i)) {
      members = members + 1.0;
      if (e < DK) { s = s + kw[(head * P.L + P.cs + j) * DK + e]; } else { s = s + vw[(head * P.L + P.cs + j) * DV + e - DK]; }
    }
  }
  if (members == 0.0) { return; }
  let c = cnt[head * P.N + i] + members;
  var at = (head * P.N + i) * DV + e - DK;
  if (e < DK) { at = (head * P.N + i) * DK + e; }
  var x = Dv[at];
  if (e < DK) { x = Dk[at]; }
  var y = x + (s - members * x) / c;
  if (P.ema == 1u) { y = x + P.rate * (s / members - x); }
  if (e < DK) { Dk[at] = y; } else { Dv[at] = y; }
}
`;
  }
}

/** Adds (sign = +1) or removes (sign = −1, backward undo) each row's absorbed tokens from its count. */
export class OvqCountsProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'trace', kind: 'read', type: 'i32' },
    { name: 'cnt', kind: 'rw' },
  ];
  readonly params = [
    ['n', 'u32'],
    ['rows', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
    ['withSeeds', 'u32'],
    ['sign', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];

  constructor(
    readonly chunk: number,
    readonly wg: number,
  ) {
    this.shaderKey = `ovq-counts-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    return /* wgsl */ `
${memberFn(this.chunk)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let g = gid.x;
  if (g >= groupCount(head)) { return; }
  let b = recordBase(head);
  let i = u32(trace[b + T_GROUP_ROW + g]);
  let start = u32(trace[b + T_GROUP_START + g]);
  let end = start + u32(trace[b + T_GROUP_COUNT + g]);
  var members = 0.0;
  for (var p = start; p < end; p++) {
    if (P.withSeeds == 1u || !isSeed(head, u32(trace[b + T_ORDER + p]), i)) { members = members + 1.0; }
  }
  cnt[head * P.N + i] = cnt[head * P.N + i] + P.sign * members;
}
`;
  }
}
