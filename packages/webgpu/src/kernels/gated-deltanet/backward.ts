// Gated DeltaNet backward, one chunk at a time in reverse, after the chunk's per-token states were
// recomputed into `states` [BH, C+1, dk, dv] (GdnChunkScanProgram 'recompute').
//
// Reverse (one invocation per value column j, carrying G[:, j] = ∂L/∂S[:, j] in private memory):
// per token t, G += scale·q̂ dy_tᵀ; then with S' = S_{t−1}, gk = Gᵀk̂, sk = S'ᵀk̂, w = v − α·sk:
// dv_t = β·gk, and G ← α(G − β k̂ gkᵀ). The per-column parts of the sums over j are stored
// (G before the update in `gs`, (gk, w, dα part) in `vecs`), and two token-parallel kernels do the
// sums over j without any cross-invocation reduction inside the sequential loop:
//   dq̂_t = scale·S_t dy_t,  dk̂_t = β·G w − αβ·S' gk,  dα_t = Σ(G∘S') − β gk·sk,  dβ_t = gk·w,
// followed by the backward of the L2 normalisation (as @ovq/baselines' normalizeRowsBackward).
import type { Binding, Program } from '../../gpu/program.js';
import { columnAccess, gdnConstants, QK4 } from './forward.js';

export class GdnReverseProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'qk', kind: 'read' },
    { name: 'aux', kind: 'read' },
    { name: 'v', kind: 'read' },
    { name: 'dy', kind: 'read' },
    { name: 'states', kind: 'read' },
    // [BH, C+1, dk, dv]: slot s holds G after token s's read term; slot C carries G between chunks.
    { name: 'gs', kind: 'rw' },
    // [BH, C, dv, 4]: (gk, w, dα part, unused) per token and column.
    { name: 'vecs', kind: 'rw' },
    { name: 'dv', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['C', 'u32'],
    ['chunk', 'u32'],
    ['scale', 'f32'],
    ['last', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dvDim: number,
    wg: number,
  ) {
    this.shaderKey = `gdn-reverse-dk${dk}-dv${dvDim}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `${gdnConstants(this.dk, this.dvDim)}
${QK4}
${columnAccess('states', false)}
${columnAccess('gs', true)}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let j = wid.x * WG_X + lid.x;
  let head = wid.y;
  if (j >= DV) { return; }
  let t0 = P.chunk * P.C;
  let n = min(P.T, t0 + P.C) - t0;
  let sb = head * (P.C + 1u) * SZ;
  let carry = sb + P.C * SZ;
  var G: array<vec4f, DK4>;
  for (var i4 = 0u; i4 < DK4; i4++) {
    G[i4] = select(load_gs(carry, i4, j), vec4f(0.0), P.last == 1u);
  }
  for (var s = n; s > 0u; s--) {
    let t = t0 + s - 1u;
    let row = head * P.T + t;
    let qo = row * 2u * DKP;
    let ko = qo + DKP;
    let a = aux[row * 4u];
    let b = aux[row * 4u + 1u];
    let dyScaled = P.scale * dy[row * DV + j];
    let prev = sb + (s - 1u) * SZ;
    var gk = 0.0;
    var sk = 0.0;
    var gs = 0.0;
    for (var i4 = 0u; i4 < DK4; i4++) {
      G[i4] = G[i4] + qk4(qo + 4u * i4) * dyScaled;
      store_gs(prev, i4, j, G[i4]);
      let kk = qk4(ko + 4u * i4);
      let sp = load_states(prev, i4, j);
      gk = gk + dot(kk, G[i4]);
      sk = sk + dot(kk, sp);
      gs = gs + dot(G[i4], sp);
    }
    let w = v[row * DV + j] - a * sk;
    dv[row * DV + j] = b * gk;
    let vo = ((head * P.C + s - 1u) * DV + j) * 4u;
    vecs[vo] = gk;
    vecs[vo + 1u] = w;
    vecs[vo + 2u] = gs - b * gk * sk;
    let bgk = b * gk;
    for (var i4 = 0u; i4 < DK4; i4++) { G[i4] = a * (G[i4] - qk4(ko + 4u * i4) * bgk); }
  }
  for (var i4 = 0u; i4 < DK4; i4++) { store_gs(carry, i4, j, G[i4]); }
}`;
  }
}

/** Deterministic tree sum of one vec4 per invocation over the workgroup (WG_X a power of two). */
const WORKGROUP_SUM = `
var<workgroup> red: array<vec4f, WG_X>;
fn workgroupSum(x: vec4f, lane: u32) -> vec4f {
  red[lane] = x;
  workgroupBarrier();
  for (var stride = WG_X / 2u; stride > 0u; stride = stride / 2u) {
    if (lane < stride) { red[lane] = red[lane] + red[lane + stride]; }
    workgroupBarrier();
  }
  return red[0];
}`;

/**
 * Backward of x̂ = x / max(‖x‖, eps) in place on `grad` (the rows this invocation wrote), given
 * d = x̂·∂L/∂x̂ in `d` and the norm in `norm`.
 */
function normalizeBackward(grad: string, hat: string): string {
  return `
  for (var i = lid.x; i < DK; i += WG_X) {
    let g = ${grad}[row * DK + i];
    ${grad}[row * DK + i] = select((g - qk[${hat} + i] * d) / norm, g / NORM_EPS, norm <= NORM_EPS);
  }`;
}

/** dq_t for every token of the chunk: one workgroup per token, invocations over keyDim rows. */
export class GdnQueryGradProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'qk', kind: 'read' },
    { name: 'aux', kind: 'read' },
    { name: 'dy', kind: 'read' },
    { name: 'states', kind: 'read' },
    { name: 'dq', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['C', 'u32'],
    ['chunk', 'u32'],
    ['scale', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `gdn-dq-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `${gdnConstants(this.dk, this.dv)}
${WORKGROUP_SUM}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let s = wid.x;
  let head = wid.y;
  let row = head * P.T + P.chunk * P.C + s;
  let qo = row * 2u * DKP;
  let after = (head * (P.C + 1u) + s + 1u) * SZ;
  var part = 0.0;
  for (var i = lid.x; i < DK; i += WG_X) {
    var acc = 0.0;
    for (var j = 0u; j < DV; j++) { acc = acc + states[after + i * DV + j] * dy[row * DV + j]; }
    let g = P.scale * acc;
    dq[row * DK + i] = g;
    part = part + qk[qo + i] * g;
  }
  let d = workgroupSum(vec4f(part, 0.0, 0.0, 0.0), lid.x).x;
  let norm = aux[row * 4u + 2u];
  ${normalizeBackward('dq', 'qo')}
}`;
  }
}

/** dk_t, dα_t, dβ_t for every token of the chunk: one workgroup per token. */
export class GdnKeyGradProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'qk', kind: 'read' },
    { name: 'aux', kind: 'read' },
    { name: 'states', kind: 'read' },
    { name: 'gs', kind: 'read' },
    { name: 'vecs', kind: 'read' },
    { name: 'dk', kind: 'rw' },
    { name: 'dAlpha', kind: 'rw' },
    { name: 'dBeta', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['C', 'u32'],
    ['chunk', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dkDim: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `gdn-dk-dk${dkDim}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `${gdnConstants(this.dkDim, this.dv)}
${WORKGROUP_SUM}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let s = wid.x;
  let head = wid.y;
  let row = head * P.T + P.chunk * P.C + s;
  let ko = row * 2u * DKP + DKP;
  let a = aux[row * 4u];
  let b = aux[row * 4u + 1u];
  let prev = (head * (P.C + 1u) + s) * SZ;
  let vb = (head * P.C + s) * DV * 4u;
  var part = 0.0;
  for (var i = lid.x; i < DK; i += WG_X) {
    var gw = 0.0;
    var sg = 0.0;
    for (var j = 0u; j < DV; j++) {
      gw = gw + gs[prev + i * DV + j] * vecs[vb + j * 4u + 1u];
      sg = sg + states[prev + i * DV + j] * vecs[vb + j * 4u];
    }
    let g = b * gw - a * b * sg;
    dk[row * DK + i] = g;
    part = part + qk[ko + i] * g;
  }
  var ab = vec2f(0.0);
  for (var j = lid.x; j < DV; j += WG_X) {
    ab = ab + vec2f(vecs[vb + j * 4u + 2u], vecs[vb + j * 4u] * vecs[vb + j * 4u + 1u]);
  }
  let sums = workgroupSum(vec4f(part, ab, 0.0), lid.x);
  if (lid.x == 0u) {
    dAlpha[row] = sums.y;
    dBeta[row] = sums.z;
  }
  let d = sums.x;
  let norm = aux[row * 4u + 3u];
  ${normalizeBackward('dk', 'ko')}
}`;
  }
}
