// OVQ read for one chunk, flash-style (ALGORITHM.md §4.2, chunked form), fused with the absorb's
// nearest-row search. Each query of the chunk attends to the dictionary rows as of the chunk start
// (logit β·q̂·μ + ln c, or the Gaussian logit) and to the chunk's pending keys up to itself
// (count 1). A workgroup takes a block of queries × a range of dictionary rows (a split: flash-
// decoding when N is large) and stages rows a tile at a time in workgroup memory. Its threads are
// QT query threads × RL row lanes: a thread holds RQ queries (and, for a full chunk, the same
// positions' keys) and every RL-th row of each tile, so one row load from workgroup memory feeds
// RQ dot products accumulated in registers. Per tile a thread takes all its logits first, then
// rescales its accumulators once (online softmax, f32). Each (split, lane) leaves a partial
// (unnormalised accumulator, running max, running sum, nearest row and its distance) in `part`;
// OvqReadCombineProgram merges the partials of a batch of chunks into the output and lse, and the
// absorb kernel merges the nearest-row partials (OvqSpawnAssignProgram).
//
// Working layout: keys/values of the stream are [heads, L, d] with the state's old pending tokens
// first (working index < P0) and this call's tokens after; queries/outputs are [heads, T, d] with
// T = L − P0. Dictionary: [heads, N, d] rows, counts [heads, N].
// Partials: part[head, K slots, PM partials, CP = min(C, L) positions, W = dv + 4] (partialLayout).
import type { Binding, Program } from '../../../gpu/program.js';
import { EXP_LIVE_WGSL, onlineMax } from '../../shared/online-softmax.js';
import { forTileRows, stageRows, tileArray, tileScalars } from '../../shared/staging.js';
import { dimConsts, loadVecFn, NEG_BIG, POS_BIG, storeVecFn } from '../../shared/wgsl.js';

export type ReadKind = 'dot' | 'gaussian';

/** How a read workgroup is laid out (chosen per adapter by `readTiling`). */
export type ReadTiling = {
  /** Rows staged per tile. */
  tile: number;
  /** Row lanes per workgroup (each takes every RL-th row of a tile). */
  lanes: number;
  /** Queries per thread. */
  perThread: number;
  /** Threads per workgroup (query threads × lanes). */
  threads: number;
  /** Dictionary rows per split (flash-decoding) and the most splits of one chunk. */
  rowsPerSplit: number;
  maxSplits: number;
  /**
   * Subgroup variant (device feature `subgroups`): the RL lanes of a query sit next to each other
   * in one subgroup and merge their partials there (subgroupShuffleXor butterflies: max, rescaled
   * sums, nearest row), so a split leaves one partial instead of RL.
   */
  subgroups: boolean;
  /** Partials one split of one query leaves: 1 with `subgroups`, else `lanes`. */
  partials: number;
};

/** Floats per partial record: the dv accumulators, then max, sum, nearest distance, nearest row. */
export function partialLayout(dv: number) {
  return { width: dv + 4, max: dv, sum: dv + 1, best: dv + 2, arg: dv + 3 };
}

/** WGSL: the index of a partial record (needs `W` and params K, PM, CP: positions per slot). */
export const PART_INDEX_WGSL = `
fn partBase(head: u32, slot: u32, p: u32, j: u32) -> u32 { return (((head * P.K + slot) * P.PM + p) * P.CP + j) * W; }
`;

/**
 * WGSL: per staged row e of the tile (row index `s`, rows before `c1`), Bias[e] = ln(count) for a
 * dictionary row (phase 0), 0 for a pending key, and Half[e] = ½‖Ks row‖² (Gaussian read only).
 * Shared by the read and its backward so both see the same logits.
 */
export function stageRowPrior(count: (s: string) => string): string {
  return forTileRows(
    's',
    's0',
    `
        var b = 0.0;
        if (phase == 0u && s < c1) { b = log(${count('s')}); }
        Bias[e] = b;
        var h = 0.0;
        if (GAUSSIAN) { for (var i = 0u; i < DK4; i++) { h = h + dot(Ks[e * DK4 + i], Ks[e * DK4 + i]); } }
        Half[e] = 0.5 * h;`,
  );
}

/**
 * WGSL (subgroup variant): the RL lanes of each query merge their partials by butterflies over
 * subgroupShuffleXor, in workgroup-uniform control flow: max, then the sums and accumulators
 * rescaled to it (f32), then the nearest row (distance, ties to the lowest row, as the absorb's
 * merge). Pairs add in a fixed pattern, so the bits are the same every run.
 */
function mergeLanesWgsl(): string {
  return `
  for (var a = 0u; a < RQ; a++) {
    var mx = m[a];
    for (var s = 1u; s < RL; s = s * 2u) { mx = max(mx, subgroupShuffleXor(mx, s)); }
    let f = expLive(m[a], mx);
    var ls = l[a] * f;
    for (var s = 1u; s < RL; s = s * 2u) { ls = ls + subgroupShuffleXor(ls, s); }
    m[a] = mx;
    l[a] = ls;
    for (var i = 0u; i < DV4; i++) {
      var v = acc[a * DV4 + i] * f;
      for (var s = 1u; s < RL; s = s * 2u) { v = v + subgroupShuffleXor(v, s); }
      acc[a * DV4 + i] = v;
    }
    var bd = best[a];
    var ba = arg[a];
    for (var s = 1u; s < RL; s = s * 2u) {
      let od = subgroupShuffleXor(bd, s);
      let oa = subgroupShuffleXor(ba, s);
      if (oa >= 0 && (ba < 0 || od < bd || (od == bd && oa < ba))) { bd = od; ba = oa; }
    }
    best[a] = bd;
    arg[a] = ba;
  }`;
}

export class OvqReadProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'qh', kind: 'read' },
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'Dk', kind: 'read' },
    { name: 'Dv', kind: 'read' },
    { name: 'cnt', kind: 'read' },
    { name: 'part', kind: 'rw' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['T', 'u32'],
    ['P0', 'u32'],
    ['cs', 'u32'],
    ['qs', 'u32'],
    ['qe', 'u32'],
    ['n', 'u32'],
    ['N', 'u32'],
    ['beta', 'f32'],
    // Rows per split, splits, whether to search the nearest row (full chunks), slot, slots, PM.
    ['RS', 'u32'],
    ['S', 'u32'],
    ['near', 'u32'],
    ['slot', 'u32'],
    ['K', 'u32'],
    ['PM', 'u32'],
    ['CP', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  readonly enables: readonly string[];

  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly chunk: number,
    readonly read: ReadKind,
    readonly tiling: ReadTiling,
  ) {
    const t = tiling;
    this.shaderKey = `ovq-read-${read}-dk${dk}-dv${dv}-c${chunk}-t${t.tile}-l${t.lanes}-q${t.perThread}-wg${t.threads}${t.subgroups ? '-sg' : ''}`;
    this.workgroupSize = [t.threads, 1, 1];
    this.enables = t.subgroups ? ['subgroups'] : [];
  }

  /** Queries per workgroup (query blocks per chunk = ⌈C / this⌉). */
  get queriesPerGroup(): number {
    return (this.tiling.threads / this.tiling.lanes) * this.tiling.perThread;
  }

  body(): string {
    const { dk, dv, chunk } = this;
    const { tile, lanes, perThread, subgroups } = this.tiling;
    const rowsPerLane = Math.ceil(tile / lanes);
    const gaussian = this.read === 'gaussian';
    const L = partialLayout(dv);
    return /* wgsl */ `
${dimConsts('DK', dk)}${dimConsts('DV', dv)}
const C: u32 = ${chunk}u;
const W: u32 = ${L.width}u;
const TR: u32 = ${tile}u;
const RL: u32 = ${lanes}u;
const RQ: u32 = ${perThread}u;
const QT: u32 = WG_X / RL;
const RPL: u32 = ${rowsPerLane}u;
const GAUSSIAN: bool = ${gaussian};
${tileArray('Ks', tile, dk)}${tileArray('Vs', tile, dv)}// Per staged row: ln(count) (0 for pending keys) and ½‖key‖² (Gaussian read only).
${tileScalars('Bias', tile)}${tileScalars('Half', tile)}${EXP_LIVE_WGSL}${loadVecFn('ldQ', 'qh', 'DK', dk)}${loadVecFn('ldKw', 'kw', 'DK', dk)}${loadVecFn('ldVw', 'vw', 'DV', dv)}${loadVecFn('ldDk', 'Dk', 'DK', dk)}${loadVecFn('ldDv', 'Dv', 'DV', dv)}${PART_INDEX_WGSL}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let split = wid.x % P.S;
  let qb = wid.x / P.S;
  ${
    subgroups
      ? `// Lanes of a query adjacent (subgroups are runs of consecutive invocations, of ≥ 4 ≥ RL).
  let lane = lid.x % RL;
  let qt = lid.x / RL;`
      : `let lane = lid.x / QT;
  let qt = lid.x % QT;`
  }
  var qr: array<vec4<f32>, ${perThread * Math.ceil(dk / 4)}>;
  var kr: array<vec4<f32>, ${perThread * Math.ceil(dk / 4)}>;
  var acc: array<vec4<f32>, ${perThread * Math.ceil(dv / 4)}>;
  var m: array<f32, RQ>;
  var l: array<f32, RQ>;
  var best: array<f32, RQ>;
  var arg: array<i32, RQ>;
  // Every private array lives at function scope and is reset explicitly: SwiftShader mishandled
  // arrays declared inside loops (their zero-initialisation per iteration).
  var lg: array<f32, ${perThread * rowsPerLane}>;
  var tmax: array<f32, RQ>;
  var scale: array<f32, RQ>;
  var qk: array<f32, RQ>;
  var d2: array<f32, RQ>;
  var p: array<f32, RQ>;
  for (var a = 0u; a < RQ; a++) {
    let w = P.cs + (qb * RQ + a) * QT + qt;
    m[a] = ${NEG_BIG};
    l[a] = 0.0;
    best[a] = ${POS_BIG};
    arg[a] = -1;
    if (w >= P.qs && w < P.qe) { for (var i = 0u; i < DK4; i++) { qr[a * DK4 + i] = ldQ((head * P.T + w - P.P0) * DK, i); } }
    if (P.near == 1u && w < P.cs + C) { for (var i = 0u; i < DK4; i++) { kr[a * DK4 + i] = ldKw((head * P.L + w) * DK, i); } }
  }
  // Phase 0: this split's dictionary rows. Phase 1 (split 0 only): pending keys [cs, qe), causal.
  for (var phase = 0u; phase < 2u; phase++) {
    var c0 = min(P.n, split * P.RS);
    var c1 = min(P.n, c0 + P.RS);
    if (phase == 1u) {
      c0 = P.cs;
      c1 = P.cs;
      if (split == 0u) { c1 = P.qe; }
    }
    for (var s0 = c0; s0 < c1; s0 += TR) {
${stageRows({
  into: 'Ks',
  dim4: 'DK4',
  row: 's',
  from: 's0',
  end: 'c1',
  load: (c) =>
    `if (phase == 0u) { x = ldDk((head * P.N + s) * DK, ${c}); } else { x = ldKw((head * P.L + s) * DK, ${c}); }`,
})}${stageRows({
  into: 'Vs',
  dim4: 'DV4',
  row: 's',
  from: 's0',
  end: 'c1',
  load: (c) =>
    `if (phase == 0u) { x = ldDv((head * P.N + s) * DV, ${c}); } else { x = ldVw((head * P.L + s) * DV, ${c}); }`,
})}
      workgroupBarrier();${stageRowPrior((s) => `cnt[head * P.N + ${s}]`)}
      workgroupBarrier();
      let rows = min(TR, c1 - s0);
      let near = phase == 0u && P.near == 1u;
      // Logits of this lane's rows of the tile (masked: ${NEG_BIG}), and their max per query.
      for (var a = 0u; a < RQ; a++) { tmax[a] = ${NEG_BIG}; }
      for (var rr = 0u; rr < RPL; rr++) {
        let r = min(lane + rr * RL, TR - 1u);
        let live = lane + rr * RL < rows;
        for (var a = 0u; a < RQ; a++) { qk[a] = 0.0; d2[a] = 0.0; }
        for (var i = 0u; i < DK4; i++) {
          let kv = Ks[r * DK4 + i];
          for (var a = 0u; a < RQ; a++) { qk[a] = qk[a] + dot(qr[a * DK4 + i], kv); }
        }
        if (near) {
          // ‖k̂_j − D_k[i]‖² as a sum of squared differences (ties: the lowest row keeps it).
          for (var i = 0u; i < DK4; i++) {
            let kv = Ks[r * DK4 + i];
            for (var a = 0u; a < RQ; a++) { let df = kr[a * DK4 + i] - kv; d2[a] = d2[a] + dot(df, df); }
          }
          for (var a = 0u; a < RQ; a++) { if (live && d2[a] < best[a]) { best[a] = d2[a]; arg[a] = i32(s0 + r); } }
        }
        for (var a = 0u; a < RQ; a++) {
          var x = P.beta * qk[a] + Bias[r];
          if (GAUSSIAN) { x = P.beta * (qk[a] - Half[r]) + Bias[r]; }
          let w = P.cs + (qb * RQ + a) * QT + qt;
          if (!live || w < P.qs || w >= P.qe || (phase == 1u && s0 + r > w)) { x = ${NEG_BIG}; }
          lg[a * RPL + rr] = x;
          tmax[a] = max(tmax[a], x);
        }
      }
      var rescale = false;
      for (var a = 0u; a < RQ; a++) {
        ${onlineMax({ m: 'm[a]', l: 'l[a]', x: 'tmax[a]', scale: 'scale[a]', next: 'mn' })}
        if (mn > m[a]) { rescale = true; }
        m[a] = mn;
      }
      if (rescale) {
        for (var i = 0u; i < DV4; i++) {
          for (var a = 0u; a < RQ; a++) { acc[a * DV4 + i] = acc[a * DV4 + i] * scale[a]; }
        }
      }
      for (var rr = 0u; rr < RPL; rr++) {
        let r = min(lane + rr * RL, TR - 1u);
        for (var a = 0u; a < RQ; a++) {
          let x = lg[a * RPL + rr];
          p[a] = expLive(x, m[a]);
          l[a] = l[a] + p[a];
        }
        for (var i = 0u; i < DV4; i++) {
          let vv = Vs[r * DV4 + i];
          for (var a = 0u; a < RQ; a++) { acc[a * DV4 + i] = acc[a * DV4 + i] + p[a] * vv; }
        }
      }
      workgroupBarrier();
    }
  }
${subgroups ? mergeLanesWgsl() : ''}
  let pidx = ${subgroups ? 'split' : 'split * RL + lane'};
  for (var a = 0u; a < RQ; a++) {
    let w = P.cs + (qb * RQ + a) * QT + qt;
    if (w < P.qe${subgroups ? ' && lane == 0u' : ''}) {
    let base = partBase(head, P.slot, pidx, w - P.cs);
    for (var i = 0u; i < DV4; i++) {
      let v = acc[a * DV4 + i];
      for (var c = 0u; c < 4u; c++) { if (4u * i + c < DV) { part[base + 4u * i + c] = v[c]; } }
    }
    part[base + DV] = m[a];
    part[base + DV + 1u] = l[a];
    part[base + DV + 2u] = best[a];
    part[base + DV + 3u] = f32(arg[a]);
    }
  }
}
`;
  }
}

/**
 * Merges the read partials of a batch of chunks (slots 0…) into the output and lse: per query,
 * M = max m_p, ℓ = Σ ℓ_p·e^{m_p−M}, out = Σ acc_p·e^{m_p−M} / ℓ, lse = M + ln ℓ, summed in
 * partial order (the same bits every run).
 */
export class OvqReadCombineProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'part', kind: 'read' },
    { name: 'out', kind: 'rw' },
    { name: 'lse', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['P0', 'u32'],
    // First position of the batch (chunk start of slot 0), end of the batch's positions.
    ['start', 'u32'],
    ['end', 'u32'],
    ['parts', 'u32'],
    ['K', 'u32'],
    ['PM', 'u32'],
    ['CP', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];

  constructor(
    readonly dv: number,
    readonly chunk: number,
    readonly wg: number,
  ) {
    this.shaderKey = `ovq-read-combine-dv${dv}-c${chunk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    const { dv, chunk } = this;
    return /* wgsl */ `
${dimConsts('DV', dv)}const C: u32 = ${chunk}u;
const W: u32 = ${partialLayout(dv).width}u;
${PART_INDEX_WGSL}${EXP_LIVE_WGSL}${loadVecFn('ldPart', 'part', 'DV', dv)}${storeVecFn('stOut', 'out', 'DV', dv)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let head = gid.y;
  let w = P.start + gid.x;
  if (w >= P.end || w < P.P0) { return; }
  let slot = (w - P.start) / C;
  let j = (w - P.start) % C;
  var mx = ${NEG_BIG};
  for (var p = 0u; p < P.parts; p++) { mx = max(mx, part[partBase(head, slot, p, j) + DV]); }
  var l = 0.0;
  var s: array<vec4<f32>, DV4>;
  for (var p = 0u; p < P.parts; p++) {
    let b = partBase(head, slot, p, j);
    let mp = part[b + DV];
    let f = expLive(mp, mx);
    l = l + part[b + DV + 1u] * f;
    for (var i = 0u; i < DV4; i++) { s[i] = s[i] + f * ldPart(b, i); }
  }
  let inv = 1.0 / l;
  for (var i = 0u; i < DV4; i++) { stOut((head * P.T + w - P.P0) * DV, i, s[i] * inv); }
  lse[head * P.T + w - P.P0] = mx + log(l);
}
`;
  }
}
