// Per-query statistics the read backward needs (lse, Δ, dβ partial), and the per-head dβ sum.
import type { Binding, Program } from '../../../gpu/program.js';

/**
 * stats [heads, T, 4] = (lse, Δ = dy·y, dβ partial (written later), unused). The query-grad
 * kernel overwrites Δ with Σⱼ pⱼ dy·(vⱼ − m) recomputed from the same p (see read-grad.ts).
 */
export class OvqStatsProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'lse', kind: 'read' },
    { name: 'out', kind: 'read' },
    { name: 'dout', kind: 'read' },
    { name: 'stats', kind: 'rw' },
  ];
  readonly params = [['rows', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-stats-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DV: u32 = ${this.dv}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG_X;
  if (r >= P.rows) { return; }
  var s = 0.0;
  for (var d = 0u; d < DV; d++) { s = s + dout[r * DV + d] * out[r * DV + d]; }
  stats[4u * r] = lse[r];
  stats[4u * r + 1u] = s;
  stats[4u * r + 2u] = 0.0;
  stats[4u * r + 3u] = 0.0;
}`;
  }
}

/**
 * Per-head dβ: one workgroup per head; each thread sums a strided slice of the per-query partials
 * with Kahan compensation, then a tree over the workgroup (fixed order, so deterministic). A
 * sequential f32 loop over T would lose ~T·2⁻²⁴ of the sum.
 */
export class OvqSumBetaProgram implements Program {
  readonly shaderKey = 'ovq-sum-beta-tree';
  readonly bindings: Binding[] = [
    { name: 'stats', kind: 'read' },
    { name: 'dbeta', kind: 'rw' },
  ];
  readonly params = [
    ['T', 'u32'],
    ['heads', 'u32'],
  ] as const;
  readonly workgroupSize = [64, 1, 1] as const;
  body(): string {
    return /* wgsl */ `
var<workgroup> part: array<f32, 64>;
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let head = wid.x;
  var s = 0.0;
  var comp = 0.0;
  if (head < P.heads) {
    for (var t = lid.x; t < P.T; t += 64u) {
      let y = stats[4u * (head * P.T + t) + 2u] - comp;
      let z = s + y;
      comp = (z - s) - y;
      s = z;
    }
  }
  part[lid.x] = s;
  workgroupBarrier();
  for (var w = 32u; w > 0u; w = w / 2u) {
    if (lid.x < w) { part[lid.x] = part[lid.x] + part[lid.x + w]; }
    workgroupBarrier();
  }
  if (lid.x == 0u && head < P.heads) { dbeta[head] = part[0]; }
}`;
  }
}
