// Tiled (flash-style) causal softmax attention forward: one thread per query, keys and values
// staged through workgroup memory a tile at a time, online (max-subtracted) softmax. Layout
// [heads, T, d] row-major for q, k, v and the output; `lse` [heads, T] is kept for the backward.
import type { Binding, Program } from '../../gpu/program.js';
import { EXP_LIVE_WGSL, onlineMax } from '../shared/online-softmax.js';
import { stageRows, tileArray } from '../shared/staging.js';
import { dimConsts, loadVecFn, NEG_BIG, storeVecFn } from '../shared/wgsl.js';

export class AttentionForwardProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'q', kind: 'read' },
    { name: 'k', kind: 'read' },
    { name: 'v', kind: 'read' },
    { name: 'out', kind: 'rw' },
    { name: 'lse', kind: 'rw' },
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
    this.shaderKey = `attention-forward-dk${dk}-dv${dv}-wg${wg}-tile${tile}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    const { dk, dv, tile } = this;
    return /* wgsl */ `
${dimConsts('DK', dk)}${dimConsts('DV', dv)}
const TR: u32 = ${tile}u;
${tileArray('Ks', tile, dk)}${tileArray('Vs', tile, dv)}${EXP_LIVE_WGSL}${loadVecFn('ldQ', 'q', 'DK', dk)}${loadVecFn('ldK', 'k', 'DK', dk)}${loadVecFn('ldV', 'v', 'DV', dv)}${storeVecFn('stOut', 'out', 'DV', dv)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.y;
  let t = wid.x * WG_X + lid.x;
  let valid = t < P.T;
  var qr: array<vec4<f32>, DK4>;
  var acc: array<vec4<f32>, DV4>;
  if (valid) { for (var i = 0u; i < DK4; i++) { qr[i] = ldQ((head * P.T + t) * DK, i); } }
  var m = ${NEG_BIG};
  var l = 0.0;
  // Causal: this block's queries never look past its last query (uniform across the workgroup).
  let kEnd = min(P.T, (wid.x + 1u) * WG_X);
  for (var s0 = 0u; s0 < kEnd; s0 += TR) {
${stageRows({ into: 'Ks', dim4: 'DK4', row: 's', from: 's0', end: 'kEnd', load: (c) => `x = ldK((head * P.T + s) * DK, ${c});` })}${stageRows({ into: 'Vs', dim4: 'DV4', row: 's', from: 's0', end: 'kEnd', load: (c) => `x = ldV((head * P.T + s) * DV, ${c});` })}
    workgroupBarrier();
    let n = min(TR, kEnd - s0);
    for (var r = 0u; r < n; r++) {
      if (valid && s0 + r <= t) {
        var dq = 0.0;
        for (var i = 0u; i < DK4; i++) { dq = dq + dot(qr[i], Ks[r * DK4 + i]); }
        let lg = P.scale * dq;
        ${onlineMax({ m: 'm', l: 'l', x: 'lg', scale: 'c', declare: true, next: 'mn' })}
        if (mn > m) { for (var i = 0u; i < DV4; i++) { acc[i] = acc[i] * c; } }
        m = mn;
        let p = expLive(lg, m);
        l = l + p;
        for (var i = 0u; i < DV4; i++) { acc[i] = acc[i] + p * Vs[r * DV4 + i]; }
      }
    }
    workgroupBarrier();
  }
  if (valid) {
    let inv = 1.0 / l;
    for (var i = 0u; i < DV4; i++) { stOut((head * P.T + t) * DV, i, acc[i] * inv); }
    lse[head * P.T + t] = m + log(l);
  }
}
`;
  }
}
