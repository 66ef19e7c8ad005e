// Tiled causal softmax attention backward (FlashAttention-2 style, recomputing probabilities from
// the saved log-sum-exp). Query side: dq and the per-query part of d(scale). Key side: dk, dv.
// Each thread owns its output row, so there are no atomics and the sums run in a fixed order.
import type { Binding, Program } from '../../gpu/program.js';
import { forTileRows, stageRows, tileArray, tileScalars } from '../shared/staging.js';
import { dimConsts, loadVecFn, storeVecFn } from '../shared/wgsl.js';

/** out[r] = a_r · b_r, one thread per row (Δ_t = dO_t · O_t). */
export class RowDotProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'a', kind: 'read' },
    { name: 'b', kind: 'read' },
    { name: 'out', kind: 'rw' },
  ];
  readonly params = [['rows', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dim: number,
    wg: number,
  ) {
    this.shaderKey = `row-dot-d${dim}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const D: u32 = ${this.dim}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG_X;
  if (r >= P.rows) { return; }
  var s = 0.0;
  for (var d = 0u; d < D; d++) { s = s + a[r * D + d] * b[r * D + d]; }
  out[r] = s;
}`;
  }
}

const BINDINGS_IN: Binding[] = [
  { name: 'q', kind: 'read' },
  { name: 'k', kind: 'read' },
  { name: 'v', kind: 'read' },
  { name: 'dout', kind: 'read' },
  { name: 'lse', kind: 'read' },
  { name: 'delta', kind: 'read' },
];

function common(dk: number, dv: number): string {
  return `${dimConsts('DK', dk)}${dimConsts('DV', dv)}${loadVecFn('ldQ', 'q', 'DK', dk)}${loadVecFn('ldK', 'k', 'DK', dk)}${loadVecFn('ldV', 'v', 'DV', dv)}${loadVecFn('ldG', 'dout', 'DV', dv)}`;
}

export class AttentionBackwardQueryProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    ...BINDINGS_IN,
    { name: 'dq', kind: 'rw' },
    { name: 'dscale', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['scale', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly wg: number,
    readonly tile: number,
  ) {
    this.shaderKey = `attention-backward-q-dk${dk}-dv${dv}-wg${wg}-tile${tile}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    const { dk, dv, tile } = this;
    return /* wgsl */ `
${common(dk, dv)}${storeVecFn('stDq', 'dq', 'DK', dk)}
const TR: u32 = ${tile}u;
${tileArray('Ks', tile, dk)}${tileArray('Vs', tile, dv)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let t = wid.x * WG_X + lid.x;
  let valid = t < P.T;
  var qr: array<vec4<f32>, DK4>;
  var go: array<vec4<f32>, DV4>;
  var dqr: array<vec4<f32>, DK4>;
  var L = 0.0;
  var D = 0.0;
  if (valid) {
    for (var i = 0u; i < DK4; i++) { qr[i] = ldQ((head * P.T + t) * DK, i); }
    for (var i = 0u; i < DV4; i++) { go[i] = ldG((head * P.T + t) * DV, i); }
    L = lse[head * P.T + t];
    D = delta[head * P.T + t];
  }
  var dsSum = 0.0;
  let kEnd = min(P.T, (wid.x + 1u) * WG_X);
  for (var s0 = 0u; s0 < kEnd; s0 += TR) {
${stageRows({ into: 'Ks', dim4: 'DK4', row: 's', from: 's0', end: 'kEnd', load: (c) => `x = ldK((head * P.T + s) * DK, ${c});` })}${stageRows({ into: 'Vs', dim4: 'DV4', row: 's', from: 's0', end: 'kEnd', load: (c) => `x = ldV((head * P.T + s) * DV, ${c});` })}
    workgroupBarrier();
    let n = min(TR, kEnd - s0);
    for (var r = 0u; r < n; r++) {
      if (valid && s0 + r <= t) {
        var qk = 0.0;
        for (var i = 0u; i < DK4; i++) { qk = qk + dot(qr[i], Ks[r * DK4 + i]); }
        let p = exp(P.scale * qk - L);
        var dp = 0.0;
        for (var i = 0u; i < DV4; i++) { dp = dp + dot(go[i], Vs[r * DV4 + i]); }
        let ds = p * (dp - D);
        dsSum = dsSum + ds * qk;
        for (var i = 0u; i < DK4; i++) { dqr[i] = dqr[i] + ds * Ks[r * DK4 + i]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    for (var i = 0u; i < DK4; i++) { stDq((head * P.T + t) * DK, i, P.scale * dqr[i]); }
    dscale[head * P.T + t] = dsSum;
  }
}`;
  }
}

export class AttentionBackwardKeyProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    ...BINDINGS_IN,
    { name: 'dk', kind: 'rw' },
    { name: 'dv', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['scale', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dkDim: number,
    readonly dvDim: number,
    readonly wg: number,
    readonly tile: number,
  ) {
    this.shaderKey = `attention-backward-kv-dk${dkDim}-dv${dvDim}-wg${wg}-tile${tile}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    const { dkDim: dk, dvDim: dv, tile } = this;
    return /* wgsl */ `
${common(dk, dv)}${storeVecFn('stDk', 'dk', 'DK', dk)}${storeVecFn('stDv', 'dv', 'DV', dv)}
const TR: u32 = ${tile}u;
${tileArray('Qs', tile, dk)}${tileArray('Gs', tile, dv)}${tileScalars('Ls', tile)}${tileScalars('Ds', tile)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let s = wid.x * WG_X + lid.x;
  let valid = s < P.T;
  var kr: array<vec4<f32>, DK4>;
  var vr: array<vec4<f32>, DV4>;
  var dkr: array<vec4<f32>, DK4>;
  var dvr: array<vec4<f32>, DV4>;
  if (valid) {
    for (var i = 0u; i < DK4; i++) { kr[i] = ldK((head * P.T + s) * DK, i); }
    for (var i = 0u; i < DV4; i++) { vr[i] = ldV((head * P.T + s) * DV, i); }
  }
  // Causal: queries before this block's first key never see it.
  for (var t0 = wid.x * WG_X; t0 < P.T; t0 += TR) {
${stageRows({ into: 'Qs', dim4: 'DK4', row: 't', from: 't0', end: 'P.T', load: (c) => `x = ldQ((head * P.T + t) * DK, ${c});` })}${stageRows({ into: 'Gs', dim4: 'DV4', row: 't', from: 't0', end: 'P.T', load: (c) => `x = ldG((head * P.T + t) * DV, ${c});` })}${forTileRows(
  't',
  't0',
  `
      var a = 0.0;
      var b = 0.0;
      if (t < P.T) { a = lse[head * P.T + t]; b = delta[head * P.T + t]; }
      Ls[e] = a;
      Ds[e] = b;`,
)}
    workgroupBarrier();
    let n = min(TR, P.T - t0);
    for (var r = 0u; r < n; r++) {
      if (valid && t0 + r >= s) {
        var qk = 0.0;
        for (var i = 0u; i < DK4; i++) { qk = qk + dot(Qs[r * DK4 + i], kr[i]); }
        let p = exp(P.scale * qk - Ls[r]);
        var dp = 0.0;
        for (var i = 0u; i < DV4; i++) {
          dp = dp + dot(Gs[r * DV4 + i], vr[i]);
          dvr[i] = dvr[i] + p * Gs[r * DV4 + i];
        }
        let ds = p * (dp - Ds[r]);
        for (var i = 0u; i < DK4; i++) { dkr[i] = dkr[i] + ds * Qs[r * DK4 + i]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    for (var i = 0u; i < DK4; i++) { stDk((head * P.T + s) * DK, i, P.scale * dkr[i]); }
    for (var i = 0u; i < DV4; i++) { stDv((head * P.T + s) * DV, i, dvr[i]); }
  }
}`;
  }
}
