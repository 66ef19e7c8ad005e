// Absorb, one workgroup per head (ALGORITHM.md §4.3): merge the nearest-row partials the read
// pass left (OvqReadProgram), spawn m rows from the chunk (farthest-point selection, or picks given
// by the host for 'first'/'random'), assign every other token to its nearest row among the old rows
// and the new ones (ties: lowest row, so an old row wins a tie), then the batch M-step and the
// counts. Decisions go to `trace` (traceLayout). The argmax has a fixed shape (a tree, or subgroup
// max/min then an in-order scan) and the M-step sums members in token order: the same bits every
// run, and the same formula the backward replays (OvqReplayMeanProgram, OvqReplayEmaProgram).
import type { Binding, Program } from '../../../gpu/program.js';
import { dimConsts, loadVecFn, POS_BIG } from '../../shared/wgsl.js';
import { partialLayout } from '../read/read.js';

/**
 * One absorb's record in `trace` (i32, stride 6C + 1 per head and absorb): the row of each token,
 * the spawned tokens in pick order, the tokens sorted by row (ties: token order), then the K
 * distinct rows touched with the start and length of their members in that order, then K.
 * The per-row M-step and its backward undo gather members from these lists (histogram, prefix
 * sum, gather by row) instead of scanning the chunk for every row.
 */
export function traceLayout(C: number) {
  return {
    stride: 6 * C + 1,
    assign: 0,
    spawned: C,
    order: 2 * C,
    groupRow: 3 * C,
    groupStart: 4 * C,
    groupCount: 5 * C,
    groups: 6 * C,
  };
}

/** WGSL constants for the trace layout (needs `const C`). */
export const TRACE_WGSL = `
const TS: u32 = 6u * C + 1u;
const T_SPAWNED: u32 = C;
const T_ORDER: u32 = 2u * C;
const T_GROUP_ROW: u32 = 3u * C;
const T_GROUP_START: u32 = 4u * C;
const T_GROUP_COUNT: u32 = 5u * C;
const T_GROUPS: u32 = 6u * C;
`;

export class OvqSpawnAssignProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'part', kind: 'read' },
    { name: 'picks', kind: 'read', type: 'i32' },
    { name: 'Dk', kind: 'rw' },
    { name: 'Dv', kind: 'rw' },
    { name: 'cnt', kind: 'rw' },
    { name: 'trace', kind: 'rw', type: 'i32' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['cs', 'u32'],
    ['n', 'u32'],
    ['m', 'u32'],
    ['a', 'u32'],
    ['A', 'u32'],
    ['N', 'u32'],
    ['farthest', 'u32'],
    // Read partials of this chunk: slot, partials written, partial stride, slots.
    ['slot', 'u32'],
    ['parts', 'u32'],
    ['PM', 'u32'],
    ['K', 'u32'],
    ['CP', 'u32'],
    // M-step: EMA (1) or running mean (0), and the EMA rate.
    ['ema', 'u32'],
    ['rate', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  readonly enables: readonly string[];
  private readonly partWidth: number;

  /** `subgroups`: reduce the argmax within subgroups first (when the device has the feature). */
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    readonly wg: number,
    readonly subgroups = false,
  ) {
    this.shaderKey = `ovq-spawn-assign-dk${dk}-dv${dv}-c${chunk}-wg${wg}${subgroups ? '-sg' : ''}`;
    this.partWidth = partialLayout(dv).width;
    this.workgroupSize = [wg, 1, 1];
    this.enables = subgroups ? ['subgroups'] : [];
  }

  /** Leaves the (value, index) argmax of the workgroup in RedVal[0], RedIdx[0]. */
  private argmax(): string {
    if (this.subgroups) {
      // Max value within the subgroup, then the lowest index holding it; subgroup leaders then
      // meet in workgroup memory and thread 0 scans them in order. Deterministic: no float sums.
      return `
      let sm = subgroupMax(bv);
      var cand = 0xffffffffu;
      if (bi != 0xffffffffu && bv == sm) { cand = bi; }
      let si = subgroupMin(cand);
      if (sid == 0u) { RedVal[tid / ssize] = sm; RedIdx[tid / ssize] = si; }
      workgroupBarrier();
      if (tid == 0u) {
        for (var g = 1u; g < WG_X / ssize; g++) {
          let ov = RedVal[g];
          let oi = RedIdx[g];
          if (oi != 0xffffffffu && (RedIdx[0] == 0xffffffffu || ov > RedVal[0] || (ov == RedVal[0] && oi < RedIdx[0]))) {
            RedVal[0] = ov;
            RedIdx[0] = oi;
          }
        }
      }
      workgroupBarrier();`;
    }
    return `
      RedVal[tid] = bv;
      RedIdx[tid] = bi;
      workgroupBarrier();
      for (var stride = WG_X / 2u; stride > 0u; stride = stride / 2u) {
        if (tid < stride) {
          let ov = RedVal[tid + stride];
          let oi = RedIdx[tid + stride];
          let mi = RedIdx[tid];
          if (oi != 0xffffffffu && (mi == 0xffffffffu || ov > RedVal[tid] || (ov == RedVal[tid] && oi < mi))) {
            RedVal[tid] = ov;
            RedIdx[tid] = oi;
          }
        }
        workgroupBarrier();
      }`;
  }

  body(): string {
    const { dk, dv, chunk } = this;
    return /* wgsl */ `
${dimConsts('DK', dk)}
const DV: u32 = ${dv}u;
const C: u32 = ${chunk}u;
const W: u32 = ${this.partWidth}u;
${TRACE_WGSL}
var<workgroup> Dist: array<f32, ${chunk}>;
var<workgroup> NearD: array<f32, ${chunk}>;
var<workgroup> NearA: array<i32, ${chunk}>;
var<workgroup> NewBest: array<f32, ${chunk}>;
var<workgroup> NewArg: array<i32, ${chunk}>;
var<workgroup> SeedRow: array<i32, ${chunk}>;
var<workgroup> Row: array<i32, ${chunk}>;
var<workgroup> Order: array<u32, ${chunk}>;
var<workgroup> Head: array<u32, ${chunk}>;
var<workgroup> GRow: array<u32, ${chunk}>;
var<workgroup> GStart: array<u32, ${chunk}>;
var<workgroup> GEnd: array<u32, ${chunk}>;
var<workgroup> RedVal: array<f32, WG_X>;
var<workgroup> RedIdx: array<u32, WG_X>;
var<workgroup> Pick: u32;
var<workgroup> Groups: u32;
${loadVecFn('ldKw', 'kw', 'DK', dk)}
fn sqDist(a: u32, b: u32) -> f32 {
  var d2 = 0.0;
  for (var i = 0u; i < DK4; i++) { let df = ldKw(a, i) - ldKw(b, i); d2 = d2 + dot(df, df); }
  return d2;
}

@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u${this.subgroups ? ', @builtin(subgroup_invocation_id) sid: u32, @builtin(subgroup_size) ssize: u32' : ''}) {
  let head = wid.x;
  let tid = lid.x;
  let rowBase = head * P.L + P.cs;
  for (var j = tid; j < C; j += WG_X) {
    // Nearest old row of token j: the best of the read partials (distance, then lowest row).
    var bd = ${POS_BIG};
    var ba = -1;
    for (var p = 0u; p < P.parts; p++) {
      let b = (((head * P.K + P.slot) * P.PM + p) * P.CP + j) * W + DV;
      let d = part[b + 2u];
      let a = i32(part[b + 3u]);
      if (a >= 0 && (ba < 0 || d < bd || (d == bd && a < ba))) { bd = d; ba = a; }
    }
    Dist[j] = bd;
    NearD[j] = bd;
    NearA[j] = ba;
    NewBest[j] = ${POS_BIG};
    NewArg[j] = -1;
    SeedRow[j] = -1;
  }
  workgroupBarrier();
  for (var r = 0u; r < P.m; r++) {
    if (P.farthest == 1u) {
      // Largest distance among unpicked tokens; ties go to the lowest index.
      var bv = -1.0;
      var bi = 0xffffffffu;
      for (var j = tid; j < C; j += WG_X) {
        if (SeedRow[j] < 0 && (bi == 0xffffffffu || Dist[j] > bv)) { bv = Dist[j]; bi = j; }
      }
${this.argmax()}
      if (tid == 0u) { Pick = RedIdx[0]; }
    } else {
      if (tid == 0u) { Pick = u32(picks[P.a * C + r]); }
    }
    workgroupBarrier();
    let pick = Pick;
    let row = P.n + r;
    if (tid == 0u) {
      SeedRow[pick] = i32(row);
      trace[(head * P.A + P.a) * TS + T_SPAWNED + r] = i32(pick);
      cnt[head * P.N + row] = 1.0;
    }
    for (var d = tid; d < DK; d += WG_X) { Dk[(head * P.N + row) * DK + d] = kw[(rowBase + pick) * DK + d]; }
    for (var d = tid; d < DV; d += WG_X) { Dv[(head * P.N + row) * DV + d] = vw[(rowBase + pick) * DV + d]; }
    for (var j = tid; j < C; j += WG_X) {
      let dn = sqDist((rowBase + j) * DK, (rowBase + pick) * DK);
      Dist[j] = min(Dist[j], dn);
      // Strictly closer only: among new rows the earlier (lower) row keeps a tie.
      if (dn < NewBest[j]) { NewBest[j] = dn; NewArg[j] = i32(row); }
    }
    workgroupBarrier();
  }
  for (var j = tid; j < C; j += WG_X) {
    var z = SeedRow[j];
    if (z < 0) {
      z = NearA[j];
      // Old rows have lower indices, so a new row must be strictly closer to win.
      if (NewArg[j] >= 0 && (z < 0 || NewBest[j] < NearD[j])) { z = NewArg[j]; }
    }
    Row[j] = z;
    trace[(head * P.A + P.a) * TS + j] = z;
  }
  workgroupBarrier();
  let base = (head * P.A + P.a) * TS;
  // Counting sort by row (ties: token order): rank_j = #{i : (row_i, i) < (row_j, j)}.
  for (var j = tid; j < C; j += WG_X) {
    var rank = 0u;
    let rj = Row[j];
    for (var i = 0u; i < C; i++) {
      let ri = Row[i];
      if (ri < rj || (ri == rj && i < j)) { rank++; }
    }
    Order[rank] = j;
  }
  workgroupBarrier();
  for (var p = tid; p < C; p += WG_X) {
    var head_ = 1u;
    if (p > 0u) { if (Row[Order[p - 1u]] == Row[Order[p]]) { head_ = 0u; } }
    Head[p] = head_;
  }
  workgroupBarrier();
  for (var p = tid; p < C; p += WG_X) {
    trace[base + T_ORDER + p] = i32(Order[p]);
    if (Head[p] == 1u) {
      var k = 0u;
      for (var i = 0u; i < p; i++) { k += Head[i]; }
      var end = p + 1u;
      while (end < C && Head[end] == 0u) { end++; }
      GRow[k] = u32(Row[Order[p]]);
      GStart[k] = p;
      GEnd[k] = end;
      trace[base + T_GROUP_ROW + k] = Row[Order[p]];
      trace[base + T_GROUP_START + k] = i32(p);
      trace[base + T_GROUP_COUNT + k] = i32(end - p);
    }
  }
  if (tid == 0u) {
    var groups = 0u;
    for (var i = 0u; i < C; i++) { groups += Head[i]; }
    trace[base + T_GROUPS] = i32(groups);
    Groups = groups;
  }
  // The seeds' rows and counts written above are read below by other threads.
  storageBarrier();
  workgroupBarrier();
  // Batch M-step, one (touched row, element) per thread and step: the members (seeds excluded)
  // in token order move the row to the running mean (D += (Σx − m·D)/c) or by the EMA rate.
  let groups = Groups;
  for (var x = tid; x < groups * (DK + DV); x += WG_X) {
    let g = x / (DK + DV);
    let e = x % (DK + DV);
    let i = GRow[g];
    var s = 0.0;
    var members = 0.0;
    for (var p = GStart[g]; p < GEnd[g]; p++) {
      let j = Order[p];
      if (SeedRow[j] != i32(i)) {
        members = members + 1.0;
        if (e < DK) { s = s + kw[(rowBase + j) * DK + e]; } else { s = s + vw[(rowBase + j) * DV + e - DK]; }
      }
    }
    if (members > 0.0) {
      let c = cnt[head * P.N + i] + members;
      var at = (head * P.N + i) * DV + e - DK;
      if (e < DK) { at = (head * P.N + i) * DK + e; }
      var y0 = Dv[at];
      if (e < DK) { y0 = Dk[at]; }
      var y = y0 + (s - members * y0) / c;
      if (P.ema == 1u) { y = y0 + P.rate * (s / members - y0); }
      if (e < DK) { Dk[at] = y; } else { Dv[at] = y; }
    }
  }
  // Every count was read above before any changes.
  storageBarrier();
  workgroupBarrier();
  for (var g = tid; g < groups; g += WG_X) {
    var members = 0.0;
    for (var p = GStart[g]; p < GEnd[g]; p++) {
      if (SeedRow[Order[p]] != i32(GRow[g])) { members = members + 1.0; }
    }
    cnt[head * P.N + GRow[g]] = cnt[head * P.N + GRow[g]] + members;
  }
}
`;
  }
}
