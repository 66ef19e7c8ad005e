// OVQ read for one chunk (ALGORITHM.md §4.2, chunked form): each query of the chunk attends to
// the dictionary rows as of the chunk start (logit β·q̂·μ + ln c, or the Gaussian logit) and to the
// chunk's pending keys up to itself (count 1), with one online softmax over both. One thread per
// query; rows and keys are staged through workgroup memory a tile at a time.
//
// Working layout: keys/values of the stream are [heads, L, d] with the state's old pending tokens
// first (working index < P0) and this call's tokens after; queries/outputs are [heads, T, d] with
// T = L − P0. Dictionary: [heads, N, d] rows, counts [heads, N].
import type { Binding, Program } from '../../gpu/program.js';
import { dimConsts, loadVecFn, NEG_BIG, storeVecFn } from '../wgsl.js';

export type ReadKind = 'dot' | 'gaussian';

export class OvqReadProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'qh', kind: 'read' },
    { name: 'kw', kind: 'read' },
    { name: 'vw', kind: 'read' },
    { name: 'Dk', kind: 'read' },
    { name: 'Dv', kind: 'read' },
    { name: 'cnt', kind: 'read' },
    { name: 'out', kind: 'rw' },
    { name: 'lse', kind: 'rw' },
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
  ] as const;
  readonly workgroupSize: readonly [number, number, number];

  constructor(
    readonly dk: number,
    readonly dv: number,
    readonly read: ReadKind,
    readonly wg: number,
    readonly tile: number,
  ) {
    this.shaderKey = `ovq-read-${read}-dk${dk}-dv${dv}-wg${wg}-tile${tile}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    const { dk, dv, tile } = this;
    const gaussian = this.read === 'gaussian';
    return /* wgsl */ `
${dimConsts('DK', dk)}${dimConsts('DV', dv)}
const TR: u32 = ${tile}u;
const GAUSSIAN: bool = ${gaussian};
var<workgroup> Ks: array<vec4<f32>, ${tile * Math.ceil(dk / 4)}>;
var<workgroup> Vs: array<vec4<f32>, ${tile * Math.ceil(dv / 4)}>;
// Per staged column: ln(count) (0 for pending keys) and ½‖key‖² (Gaussian read only).
var<workgroup> Bias: array<f32, ${tile}>;
var<workgroup> Half: array<f32, ${tile}>;
${loadVecFn('ldQ', 'qh', 'DK', dk)}${loadVecFn('ldKw', 'kw', 'DK', dk)}${loadVecFn('ldVw', 'vw', 'DV', dv)}${loadVecFn('ldDk', 'Dk', 'DK', dk)}${loadVecFn('ldDv', 'Dv', 'DV', dv)}${storeVecFn('stOut', 'out', 'DV', dv)}

@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let w = P.qs + wid.x * WG_X + lid.x;
  let valid = w < P.qe;
  var qr: array<vec4<f32>, DK4>;
  var acc: array<vec4<f32>, DV4>;
  if (valid) { for (var i = 0u; i < DK4; i++) { qr[i] = ldQ((head * P.T + w - P.P0) * DK, i); } }
  var m = ${NEG_BIG};
  var l = 0.0;
  // Pass 0: dictionary rows [0, n). Pass 1: pending keys [cs, qe) (causal: key ≤ query).
  for (var phase = 0u; phase < 2u; phase++) {
    var c0 = 0u;
    var c1 = P.n;
    if (phase == 1u) { c0 = P.cs; c1 = P.qe; }
    for (var s0 = c0; s0 < c1; s0 += TR) {
      for (var e = lid.x; e < TR * DK4; e += WG_X) {
        let s = s0 + e / DK4;
        var x = vec4<f32>(0.0);
        if (s < c1) {
          if (phase == 0u) { x = ldDk((head * P.N + s) * DK, e % DK4); } else { x = ldKw((head * P.L + s) * DK, e % DK4); }
        }
        Ks[e] = x;
      }
      for (var e = lid.x; e < TR * DV4; e += WG_X) {
        let s = s0 + e / DV4;
        var x = vec4<f32>(0.0);
        if (s < c1) {
          if (phase == 0u) { x = ldDv((head * P.N + s) * DV, e % DV4); } else { x = ldVw((head * P.L + s) * DV, e % DV4); }
        }
        Vs[e] = x;
      }
      workgroupBarrier();
      for (var e = lid.x; e < TR; e += WG_X) {
        let s = s0 + e;
        var b = 0.0;
        if (phase == 0u && s < c1) { b = log(cnt[head * P.N + s]); }
        Bias[e] = b;
        var h = 0.0;
        if (GAUSSIAN) {
          for (var i = 0u; i < DK4; i++) { h = h + dot(Ks[e * DK4 + i], Ks[e * DK4 + i]); }
        }
        Half[e] = 0.5 * h;
      }
      workgroupBarrier();
      let cnt_ = min(TR, c1 - s0);
      for (var r = 0u; r < cnt_; r++) {
        if (valid && (phase == 0u || s0 + r <= w)) {
          var qk = 0.0;
          for (var i = 0u; i < DK4; i++) { qk = qk + dot(qr[i], Ks[r * DK4 + i]); }
          var lg = P.beta * qk + Bias[r];
          if (GAUSSIAN) { lg = P.beta * (qk - Half[r]) + Bias[r]; }
          if (lg > m) {
            let c = exp(m - lg);
            l = l * c;
            for (var i = 0u; i < DV4; i++) { acc[i] = acc[i] * c; }
            m = lg;
          }
          let p = exp(lg - m);
          l = l + p;
          for (var i = 0u; i < DV4; i++) { acc[i] = acc[i] + p * Vs[r * DV4 + i]; }
        }
      }
      workgroupBarrier();
    }
  }
  if (valid) {
    let inv = 1.0 / l;
    let t = w - P.P0;
    for (var i = 0u; i < DV4; i++) { stOut((head * P.T + t) * DV, i, acc[i] * inv); }
    lse[head * P.T + t] = m + log(l);
  }
}
`;
  }
}
