// Absorb step 1: for each token j of a full chunk, the nearest existing row (ties: lowest row)
// and its squared distance, packed into `nearest` [heads, 2C] as (distances, rows) ‖k̂_j − D_k[i]‖² (POS_BIG, i.e. +∞, when the dictionary is empty).
// Farthest-point spawn starts from these distances; assignment compares against them.
import type { Binding, Program } from '../../gpu/program.js';
import { dimConsts, loadVecFn, POS_BIG } from '../wgsl.js';

export class OvqNearestProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'kw', kind: 'read' },
    { name: 'Dk', kind: 'read' },
    { name: 'nearest', kind: 'rw' },
  ];
  readonly params = [
    ['L', 'u32'],
    ['cs', 'u32'],
    ['C', 'u32'],
    ['n', 'u32'],
    ['N', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];

  constructor(
    readonly dk: number,
    readonly wg: number,
    readonly tile: number,
  ) {
    this.shaderKey = `ovq-nearest-dk${dk}-wg${wg}-tile${tile}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    const { dk, tile } = this;
    return /* wgsl */ `
${dimConsts('DK', dk)}
const TR: u32 = ${tile}u;
var<workgroup> Ks: array<vec4<f32>, ${tile * Math.ceil(dk / 4)}>;
${loadVecFn('ldKw', 'kw', 'DK', dk)}${loadVecFn('ldDk', 'Dk', 'DK', dk)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let j = wid.x * WG_X + lid.x;
  let valid = j < P.C;
  var kr: array<vec4<f32>, DK4>;
  if (valid) { for (var i = 0u; i < DK4; i++) { kr[i] = ldKw((head * P.L + P.cs + j) * DK, i); } }
  var best = ${POS_BIG};
  var arg = -1;
  for (var s0 = 0u; s0 < P.n; s0 += TR) {
    for (var e = lid.x; e < TR * DK4; e += WG_X) {
      let s = s0 + e / DK4;
      var x = vec4<f32>(0.0);
      if (s < P.n) { x = ldDk((head * P.N + s) * DK, e % DK4); }
      Ks[e] = x;
    }
    workgroupBarrier();
    let cnt_ = min(TR, P.n - s0);
    for (var r = 0u; r < cnt_; r++) {
      var d2 = 0.0;
      for (var i = 0u; i < DK4; i++) { let df = kr[i] - Ks[r * DK4 + i]; d2 = d2 + dot(df, df); }
      if (d2 < best) { best = d2; arg = i32(s0 + r); }
    }
    workgroupBarrier();
  }
  if (valid) {
    // [heads, 2C]: distances, then row indices as exact small floats (fewer bindings).
    nearest[head * 2u * P.C + j] = best;
    nearest[head * 2u * P.C + P.C + j] = f32(arg);
  }
}
`;
  }
}
