// Absorb step 4 (batch M-step), deterministic without float atomics: one thread per (row,
// element) sums its row's members in token order, then moves the row to the running mean
// (D += (Σx − m·D)/c) or by the EMA rate. Counts change in a second pass (OvqCountsProgram) so no
// thread reads a count another thread of the same dispatch writes.
import type { Binding, Program } from '../../gpu/program.js';

/** Shared WGSL: is token j of absorb a a member (assigned, not the seed) of row i? */
export function memberFn(chunk: number): string {
  return `
const C: u32 = ${chunk}u;
fn rowOf(head: u32, j: u32) -> i32 { return trace[(head * P.A + P.a) * 2u * C + j]; }
// A seed is the token that created its row at this absorb: row ≥ n and spawned[row − n] == j.
fn isSeed(head: u32, j: u32, row: i32) -> bool {
  let r = u32(row);
  return r >= P.n && u32(trace[(head * P.A + P.a) * 2u * C + C + (r - P.n)]) == j;
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
  let i = gid.x / (DK + DV);
  if (i >= P.rows) { return; }
  var s = 0.0;
  var members = 0.0;
  for (var j = 0u; j < C; j++) {
    let row = rowOf(head, j);
    if (row == i32(i) && !isSeed(head, j, row)) {
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
  let i = gid.x;
  if (i >= P.rows) { return; }
  var members = 0.0;
  for (var j = 0u; j < C; j++) {
    let row = rowOf(head, j);
    if (row == i32(i) && (P.withSeeds == 1u || !isSeed(head, j, row))) { members = members + 1.0; }
  }
  cnt[head * P.N + i] = cnt[head * P.N + i] + P.sign * members;
}
`;
  }
}
