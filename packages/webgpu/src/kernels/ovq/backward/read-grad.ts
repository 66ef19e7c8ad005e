// Backward of one chunk's read. Probabilities are recomputed from the saved log-sum-exp, so
// nothing per chunk is stored. Query side: dq̂ and the per-query dβ partial (one thread per query).
// Column side: one thread per column, i.e. per dictionary row (accumulating G += ∂L/∂row / count,
// the carried gradient of ALGORITHM.md §5) or per in-chunk key (dk̂, dv). No atomics anywhere.
//
// Precision: ∂ℓⱼ = pⱼ(dpⱼ − Δ) with dpⱼ = dy·vⱼ and Δ = Σⱼ pⱼ dpⱼ cancels catastrophically when
// the values share a large offset (dp ≈ Δ ≈ offset·Σdy). Both kernels therefore use values
// centred on the head's first value m (any constant leaves the exact result unchanged), and the
// query kernel recomputes Δ = Σⱼ pⱼ dy·(vⱼ − m) from the very p it uses (a first pass over the
// columns) and stores it for the column kernel, instead of taking dy·y from the forward output.
import type { Binding, Program } from '../../../gpu/program.js';
import { forTileRows, stageRows, tileArray, tileScalars } from '../../shared/staging.js';
import { dimConsts, loadVecFn, storeVecFn } from '../../shared/wgsl.js';
import { type ReadKind, stageRowPrior } from '../read/read.js';

const PARAMS = [
  ['L', 'u32'],
  ['T', 'u32'],
  ['cs', 'u32'],
  ['qs', 'u32'],
  ['qe', 'u32'],
  ['n', 'u32'],
  ['N', 'u32'],
  ['beta', 'f32'],
] as const;

function common(dk: number, dv: number, read: ReadKind): string {
  return `${dimConsts('DK', dk)}${dimConsts('DV', dv)}
const E: u32 = DK + DV;
const W: u32 = E + 1u;
const GAUSSIAN: bool = ${read === 'gaussian'};
${loadVecFn('ldQ', 'qh', 'DK', dk)}${loadVecFn('ldKw', 'kw', 'DK', dk)}${loadVecFn('ldVw', 'vw', 'DV', dv)}${loadVecFn('ldBDk', 'BD', 'DK', dk)}${loadVecFn('ldBDv', 'BD', 'DV', dv)}${loadVecFn('ldG', 'dout', 'DV', dv)}
// The head's first value: the centre subtracted from every value (see the file comment).
fn centre(head: u32, i: u32) -> vec4<f32> { return ldVw(head * P.L * DV, i); }`;
}

export class OvqQueryGradProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'qh', kind: 'read' },
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'BD', kind: 'read' },
    { name: 'dout', kind: 'read' },
    { name: 'stats', kind: 'rw' },
    { name: 'dqh', kind: 'rw' },
  ];
  readonly params = PARAMS;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly read: ReadKind,
    readonly wg: number,
    readonly tile: number,
  ) {
    this.shaderKey = `ovq-query-grad-${read}-dk${dk}-dv${dv}-wg${wg}-tile${tile}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    const { dk, dv, tile } = this;
    return /* wgsl */ `
${common(dk, dv, this.read)}${storeVecFn('stDq', 'dqh', 'DK', dk)}
const TR: u32 = ${tile}u;
${tileArray('Ks', tile, dk)}${tileArray('Vs', tile, dv)}${tileScalars('Bias', tile)}${tileScalars('Half', tile)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let w = P.qs + wid.x * WG_X + lid.x;
  let valid = w < P.qe;
  var qr: array<vec4<f32>, DK4>;
  var go: array<vec4<f32>, DV4>;
  var dq: array<vec4<f32>, DK4>;
  var mv: array<vec4<f32>, DV4>;
  var lse = 0.0;
  var delta = 0.0;
  for (var i = 0u; i < DV4; i++) { mv[i] = centre(head, i); }
  if (valid) {
    for (var i = 0u; i < DK4; i++) { qr[i] = ldQ((head * P.T + w) * DK, i); }
    for (var i = 0u; i < DV4; i++) { go[i] = ldG((head * P.T + w) * DV, i); }
    lse = stats[4u * (head * P.T + w)];
  }
  var dbeta = 0.0;
  // sweep 0: Δ = Σ p·dp over every column; sweep 1: the gradients with that Δ.
  for (var sweep = 0u; sweep < 2u; sweep++) {
  for (var phase = 0u; phase < 2u; phase++) {
    var c0 = 0u;
    var c1 = P.n;
    if (phase == 1u) { c0 = P.cs; c1 = P.qe; }
    for (var s0 = c0; s0 < c1; s0 += TR) {
${stageRows({
  into: 'Ks',
  dim4: 'DK4',
  row: 's',
  from: 's0',
  end: 'c1',
  load: (c) =>
    `if (phase == 0u) { x = ldBDk((head * P.N + s) * W, ${c}); } else { x = ldKw((head * P.L + s) * DK, ${c}); }`,
})}${stageRows({
  into: 'Vs',
  dim4: 'DV4',
  row: 's',
  from: 's0',
  end: 'c1',
  load: (c) =>
    `if (phase == 0u) { x = ldBDv((head * P.N + s) * W + DK, ${c}); } else { x = ldVw((head * P.L + s) * DV, ${c}); }
          x = x - mv[${c}];`,
})}
      workgroupBarrier();${stageRowPrior((s) => `BD[(head * P.N + ${s}) * W + E]`)}
      workgroupBarrier();
      let cols = min(TR, c1 - s0);
      for (var r = 0u; r < cols; r++) {
        if (valid && (phase == 0u || s0 + r <= w)) {
          var qk = 0.0;
          for (var i = 0u; i < DK4; i++) { qk = qk + dot(qr[i], Ks[r * DK4 + i]); }
          var raw = qk;
          if (GAUSSIAN) { raw = qk - Half[r]; }
          let p = exp(P.beta * raw + Bias[r] - lse);
          var dp = 0.0;
          for (var i = 0u; i < DV4; i++) { dp = dp + dot(go[i], Vs[r * DV4 + i]); }
          if (sweep == 0u) {
            delta = delta + p * dp;
          } else {
            let dl = p * (dp - delta);
            dbeta = dbeta + dl * raw;
            for (var i = 0u; i < DK4; i++) { dq[i] = dq[i] + dl * Ks[r * DK4 + i]; }
          }
        }
      }
      workgroupBarrier();
    }
  }
  }
  if (valid) {
    for (var i = 0u; i < DK4; i++) { stDq((head * P.T + w) * DK, i, P.beta * dq[i]); }
    stats[4u * (head * P.T + w) + 1u] = delta;
    stats[4u * (head * P.T + w) + 2u] = dbeta;
  }
}
`;
  }
}

export class OvqColumnGradProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'qh', kind: 'read' },
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'BD', kind: 'read' },
    { name: 'dout', kind: 'read' },
    { name: 'stats', kind: 'read' },
    { name: 'G', kind: 'rw' },
    { name: 'dKV', kind: 'rw' },
  ];
  readonly params = PARAMS;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly read: ReadKind,
    readonly wg: number,
    readonly tile: number,
    /** `update: ema`: rows are not means, so G collects ∂L/∂row itself (no 1/count). */
    readonly ema = false,
  ) {
    this.shaderKey = `ovq-column-grad-${read}-dk${dk}-dv${dv}-wg${wg}-tile${tile}${ema ? '-ema' : ''}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    const { dk, dv, tile } = this;
    return /* wgsl */ `
${common(dk, dv, this.read)}
const TR: u32 = ${tile}u;
${tileArray('Qs', tile, dk)}${tileArray('Gs', tile, dv)}${tileScalars('Ls', tile)}${tileScalars('Ds', tile)}
fn addAt(at: u32, i: u32, v: vec4<f32>, dim: u32, toG: bool) {
  for (var j = 0u; j < 4u; j++) {
    let d = 4u * i + j;
    if (d < dim) {
      if (toG) { G[at + d] = G[at + d] + v[j]; } else { dKV[at + d] = dKV[at + d] + v[j]; }
    }
  }
}

@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let col = wid.x * WG_X + lid.x;
  let cols = P.n + (P.qe - P.cs);
  let valid = col < cols;
  let isRow = col < P.n;
  let s = P.cs + col - P.n;
  var kr: array<vec4<f32>, DK4>;
  var vr: array<vec4<f32>, DV4>;
  var gk: array<vec4<f32>, DK4>;
  var gv: array<vec4<f32>, DV4>;
  var bias = 0.0;
  var count = 1.0;
  if (valid) {
    if (isRow) {
      for (var i = 0u; i < DK4; i++) { kr[i] = ldBDk((head * P.N + col) * W, i); }
      for (var i = 0u; i < DV4; i++) { vr[i] = ldBDv((head * P.N + col) * W + DK, i); }
      count = BD[(head * P.N + col) * W + E];
      bias = log(count);
    } else {
      for (var i = 0u; i < DK4; i++) { kr[i] = ldKw((head * P.L + s) * DK, i); }
      for (var i = 0u; i < DV4; i++) { vr[i] = ldVw((head * P.L + s) * DV, i); }
    }
  }
  for (var i = 0u; i < DV4; i++) { vr[i] = vr[i] - centre(head, i); }
  var half = 0.0;
  if (GAUSSIAN) { for (var i = 0u; i < DK4; i++) { half = half + dot(kr[i], kr[i]); } half = 0.5 * half; }
  var dlSum = 0.0;
  for (var t0 = P.qs; t0 < P.qe; t0 += TR) {
${stageRows({ into: 'Qs', dim4: 'DK4', row: 't', from: 't0', end: 'P.qe', load: (c) => `x = ldQ((head * P.T + t) * DK, ${c});` })}${stageRows({ into: 'Gs', dim4: 'DV4', row: 't', from: 't0', end: 'P.qe', load: (c) => `x = ldG((head * P.T + t) * DV, ${c});` })}${forTileRows(
  't',
  't0',
  `
      var a = 0.0;
      var b = 0.0;
      if (t < P.qe) { a = stats[4u * (head * P.T + t)]; b = stats[4u * (head * P.T + t) + 1u]; }
      Ls[e] = a;
      Ds[e] = b;`,
)}
    workgroupBarrier();
    let rows = min(TR, P.qe - t0);
    for (var r = 0u; r < rows; r++) {
      if (valid && (isRow || t0 + r >= s)) {
        var qk = 0.0;
        for (var i = 0u; i < DK4; i++) { qk = qk + dot(Qs[r * DK4 + i], kr[i]); }
        var raw = qk;
        if (GAUSSIAN) { raw = qk - half; }
        let p = exp(P.beta * raw + bias - Ls[r]);
        var dp = 0.0;
        for (var i = 0u; i < DV4; i++) {
          dp = dp + dot(Gs[r * DV4 + i], vr[i]);
          gv[i] = gv[i] + p * Gs[r * DV4 + i];
        }
        let dl = p * (dp - Ds[r]);
        dlSum = dlSum + dl;
        for (var i = 0u; i < DK4; i++) { gk[i] = gk[i] + dl * Qs[r * DK4 + i]; }
      }
    }
    workgroupBarrier();
  }
  if (!valid) { return; }
  // ∂ℓ/∂key = β q̂ (dot) or β (q̂ − key) (Gaussian).
  var selfCoef = 0.0;
  if (GAUSSIAN) { selfCoef = P.beta * dlSum; }
  if (isRow) {
    // Carried gradient: G[i] += ∂L/∂row / count (count as of this chunk's start; 1 for ema).
    let inv = ${this.ema ? '1.0' : '1.0 / count'};
    let at = (head * P.N + col) * E;
    for (var i = 0u; i < DK4; i++) { addAt(at, i, (P.beta * gk[i] - selfCoef * kr[i]) * inv, DK, true); }
    for (var i = 0u; i < DV4; i++) { addAt(at + DK, i, gv[i] * inv, DV, true); }
  } else {
    let at = (head * P.L + s) * E;
    for (var i = 0u; i < DK4; i++) { addAt(at, i, P.beta * gk[i] - selfCoef * kr[i], DK, false); }
    for (var i = 0u; i < DV4; i++) { addAt(at + DK, i, gv[i], DV, false); }
  }
}
`;
  }
}
