// Gated DeltaNet forward: S_t = α_t (I − β_t k̂_t k̂_tᵀ) S_{t−1} + β_t k̂_t v_tᵀ, y_t = scale·S_tᵀ q̂_t,
// S stored as @ovq/baselines' kv: [keyDim, valueDim] row-major. One invocation per value column j
// holds S[:, j] (keyDim floats, as vec4s) in private memory: the read (Sᵀk̂)_j, the update of column
// j and y_j need only q̂, k̂, so there is no cross-invocation reduction and no barrier. One dispatch
// per chunk of C tokens; the state at every chunk boundary goes to `ckpt` [BH, chunks+1, dk, dv]
// (slot c: the state before chunk c), which also carries the state from one dispatch to the next.
import type { Binding, Program } from '../../gpu/program.js';
import { l2Norm } from '../shared/l2.js';

/** Keys padded to whole vec4s (zeros), as written by the normalise kernel. */
export function paddedKeyDim(dk: number): number {
  return 4 * Math.ceil(dk / 4);
}

/** WGSL constants shared by every Gated DeltaNet kernel. */
export function gdnConstants(dk: number, dv: number): string {
  return `
const DK: u32 = ${dk}u;
const DV: u32 = ${dv}u;
const DK4: u32 = ${Math.ceil(dk / 4)}u;
const DKP: u32 = ${paddedKeyDim(dk)}u;
const SZ: u32 = ${dk * dv}u;
const NORM_EPS: f32 = 1e-12;`;
}

/** Reads 4 consecutive padded q̂/k̂ values of the `qk` buffer [BH, T, 2, DKP]. */
export const QK4 = `
fn qk4(o: u32) -> vec4f { return vec4f(qk[o], qk[o + 1u], qk[o + 2u], qk[o + 3u]); }`;

/**
 * Column helpers for a state-shaped buffer (states of [dk, dv] at `base`): load/store rows
 * 4·i4…4·i4+3 of column j; rows past dk read as 0 and are not written.
 */
export function columnAccess(buffer: string, store: boolean): string {
  const load = `
fn load_${buffer}(base: u32, i4: u32, j: u32) -> vec4f {
  let i = 4u * i4;
  var r = vec4f(0.0);
  r.x = ${buffer}[base + i * DV + j];
  if (i + 1u < DK) { r.y = ${buffer}[base + (i + 1u) * DV + j]; }
  if (i + 2u < DK) { r.z = ${buffer}[base + (i + 2u) * DV + j]; }
  if (i + 3u < DK) { r.w = ${buffer}[base + (i + 3u) * DV + j]; }
  return r;
}`;
  if (!store) return load;
  return `${load}
fn store_${buffer}(base: u32, i4: u32, j: u32, x: vec4f) {
  let i = 4u * i4;
  ${buffer}[base + i * DV + j] = x.x;
  if (i + 1u < DK) { ${buffer}[base + (i + 1u) * DV + j] = x.y; }
  if (i + 2u < DK) { ${buffer}[base + (i + 2u) * DV + j] = x.z; }
  if (i + 3u < DK) { ${buffer}[base + (i + 3u) * DV + j] = x.w; }
}`;
}

/**
 * q̂, k̂ = x / max(‖x‖, 1e-12) per token (as @ovq/baselines' normalizeRows) into `qk` [BH, T, 2, DKP]
 * (padding zeroed), and `aux` [BH, T, 4] = (α, β, ‖q‖, ‖k‖) so later kernels need fewer bindings.
 */
export class GdnNormalizeProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'q', kind: 'read' },
    { name: 'k', kind: 'read' },
    { name: 'alpha', kind: 'read' },
    { name: 'beta', kind: 'read' },
    { name: 'qk', kind: 'rw' },
    { name: 'aux', kind: 'rw' },
  ];
  readonly params = [['T', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    wg: number,
  ) {
    this.shaderKey = `gdn-normalize-dk${dk}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `${gdnConstants(this.dk, 1)}
fn normalizeRow(src: u32, dst: u32, isQuery: bool) -> f32 {
  ${l2Norm('norm', 'DK', (d) => `select(k[src + ${d}], q[src + ${d}], isQuery)`)}
  let n = normDiv;
  for (var i = 0u; i < DKP; i++) {
    var x = 0.0;
    if (i < DK) { x = select(k[src + i], q[src + i], isQuery) / n; }
    qk[dst + i] = x;
  }
  return n;
}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let t = gid.x;
  let head = gid.y;
  if (t >= P.T) { return; }
  let row = head * P.T + t;
  let qn = normalizeRow(row * DK, row * 2u * DKP, true);
  let kn = normalizeRow(row * DK, row * 2u * DKP + DKP, false);
  aux[row * 4u] = alpha[row];
  aux[row * 4u + 1u] = beta[row];
  aux[row * 4u + 2u] = qn;
  aux[row * 4u + 3u] = kn;
}`;
  }
}

/**
 * One chunk of the recurrence from the checkpoint before it. `mode`: 'forward' writes the outputs
 * and the next checkpoint; 'checkpoints' only the checkpoint (the backward's re-run);
 * 'recompute' writes every per-token state of the chunk to `states` [BH, C+1, dk, dv] (slot 0: the
 * chunk's start state, slot s+1: after its token s) for the backward.
 */
export class GdnChunkScanProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[];
  readonly params = [
    ['T', 'u32'],
    ['C', 'u32'],
    ['chunk', 'u32'],
    ['chunks', 'u32'],
    ['scale', 'f32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
    readonly mode: 'forward' | 'checkpoints' | 'recompute',
  ) {
    this.shaderKey = `gdn-scan-${mode}-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
    this.bindings = [
      { name: 'qk', kind: 'read' },
      { name: 'aux', kind: 'read' },
      { name: 'v', kind: 'read' },
      ...(mode === 'forward' ? [{ name: 'out', kind: 'rw' } as const] : []),
      { name: 'ckpt', kind: mode === 'recompute' ? 'read' : 'rw' },
      ...(mode === 'recompute' ? [{ name: 'states', kind: 'rw' } as const] : []),
    ];
  }
  body(): string {
    const recompute = this.mode === 'recompute';
    const forward = this.mode === 'forward';
    const write = (expr: string) =>
      recompute ? `store_states(sb + (s + 1u) * SZ, i4, j, ${expr});` : '';
    return /* wgsl */ `${gdnConstants(this.dk, this.dv)}
${QK4}
${columnAccess('ckpt', !recompute)}
${recompute ? columnAccess('states', true) : ''}
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(workgroup_id) wid: vec3u, @builtin(local_invocation_id) lid: vec3u) {
  let j = wid.x * WG_X + lid.x;
  let head = wid.y;
  if (j >= DV) { return; }
  let c = P.chunk;
  let t0 = c * P.C;
  let t1 = min(P.T, t0 + P.C);
  let cb = (head * (P.chunks + 1u) + c) * SZ;
  var S: array<vec4f, DK4>;
  ${
    recompute
      ? `let sb = head * (P.C + 1u) * SZ;
  for (var i4 = 0u; i4 < DK4; i4++) {
    S[i4] = load_ckpt(cb, i4, j);
    store_states(sb, i4, j, S[i4]);
  }`
      : `if (c == 0u) {
    for (var i4 = 0u; i4 < DK4; i4++) { S[i4] = vec4f(0.0); store_ckpt(cb, i4, j, S[i4]); }
  } else {
    for (var i4 = 0u; i4 < DK4; i4++) { S[i4] = load_ckpt(cb, i4, j); }
  }`
  }
  for (var t = t0; t < t1; t++) {
    let s = t - t0;
    let row = head * P.T + t;
    let qo = row * 2u * DKP;
    let ko = qo + DKP;
    let a = aux[row * 4u];
    let b = aux[row * 4u + 1u];
    var sk = 0.0;
    for (var i4 = 0u; i4 < DK4; i4++) { sk = sk + dot(qk4(ko + 4u * i4), S[i4]); }
    let u = b * (v[row * DV + j] - a * sk);
    var y = 0.0;
    for (var i4 = 0u; i4 < DK4; i4++) {
      S[i4] = a * S[i4] + qk4(ko + 4u * i4) * u;
      ${forward ? 'y = y + dot(qk4(qo + 4u * i4), S[i4]);' : ''}
      ${write('S[i4]')}
    }
    ${forward ? 'out[row * DV + j] = P.scale * y;' : ''}
  }
  ${recompute ? '' : 'for (var i4 = 0u; i4 < DK4; i4++) { store_ckpt(cb + SZ, i4, j, S[i4]); }'}
}`;
  }
}
