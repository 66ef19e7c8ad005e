// Rebuilds a chunk-start dictionary for the backward: absorbs replayed from a checkpoint with
// the recorded decisions and the forward's own update formula, so the backward sees its bits.
import type { Binding, Program } from '../../../gpu/program.js';
import { memberFn } from '../absorb/update.js';

/**
 * What both replays declare: the packed row width (E elements and a count, W) and element e of
 * token j of the current chunk, read from the working keys or values.
 */
function replayPrelude(dk: number, dv: number, chunk: number): string {
  return /* wgsl */ `const DK: u32 = ${dk}u;
const DV: u32 = ${dv}u;
const E: u32 = DK + DV;
const W: u32 = E + 1u;
${memberFn(chunk)}
fn token(head: u32, j: u32, e: u32) -> f32 {
  if (e < DK) { return kw[(head * P.L + P.cs + j) * DK + e]; }
  return vw[(head * P.L + P.cs + j) * DV + e - DK];
}`;
}

/**
 * `update: ema` replay of absorb a on the packed dictionary BD from its recorded decisions (one
 * thread per touched row and element): a spawned row starts as its seed with count 1, then every
 * row with m > 0 members moves as in the forward, members summed in token order,
 * row + η·(Σ members / m − row), and its count becomes count + m. No value reads a count, so one
 * dispatch needs no barrier (the running mean's replay is OvqReplayMeanProgram).
 */
export class OvqReplayEmaProgram implements Program {
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
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-replay-ema-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
${replayPrelude(this.dk, this.dv, this.chunk)}
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
  var s = 0.0;
  var members = 0.0;
  var x = 0.0;
  if (i >= P.n) {
    let seed = u32(trace[b + T_SPAWNED + (i - P.n)]);
    x = 1.0;
    if (e < E) { x = token(head, seed, e); }
  } else {
    x = BD[at];
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
    y = x + P.rate * (s / members - x);
  }
  BD[at] = y;
}`;
  }
}

/**
 * The running-mean replay of absorb a in one dispatch: one workgroup per touched row (its
 * threads stride over the row's elements and its count). Every thread reads the row's count
 * before the barrier and the new count is written after it, so no thread reads a count another
 * writes; values and counts are the forward's M-step (same sums in token order, same formula),
 * bit for bit.
 */
export class OvqReplayMeanProgram implements Program {
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
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-replay-mean-dk${dk}-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
${replayPrelude(this.dk, this.dv, this.chunk)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let g = wid.x;
  let live = g < groupCount(head);
  var i = 0u;
  var start = 0u;
  var end = 0u;
  var seed = 0u;
  var count = 1.0;
  if (live) {
    let b = recordBase(head);
    i = u32(trace[b + T_GROUP_ROW + g]);
    start = u32(trace[b + T_GROUP_START + g]);
    end = start + u32(trace[b + T_GROUP_COUNT + g]);
    if (i >= P.n) {
      seed = u32(trace[b + T_SPAWNED + (i - P.n)]);
    } else {
      count = BD[(head * P.N + i) * W + E];
    }
  }
  // Uniform control flow: every thread of the row has read its count before it changes.
  storageBarrier();
  if (!live) { return; }
  for (var e = lid.x; e < W; e += WG_X) {
    let at = (head * P.N + i) * W + e;
    var s = 0.0;
    var members = 0.0;
    var x = 0.0;
    if (i >= P.n) {
      x = 1.0;
      if (e < E) { x = token(head, seed, e); }
    } else {
      x = BD[at];
    }
    for (var p = start; p < end; p++) {
      let j = u32(trace[recordBase(head) + T_ORDER + p]);
      if (!isSeed(head, j, i)) {
        members = members + 1.0;
        if (e < E) { s = s + token(head, j, e); }
      }
    }
    var y = x;
    if (e == E) {
      y = x + members;
    } else if (members > 0.0) {
      y = x + (s - members * x) / (count + members);
    }
    BD[at] = y;
  }
}`;
  }
}
