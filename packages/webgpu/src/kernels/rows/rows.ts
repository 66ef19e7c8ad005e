// Row-wise preprocessing: copy rows between [heads, rows, dim] layouts with different row
// strides/offsets, optionally L2-normalising each row (x / max(‖x‖, 1e-12), as the reference),
// and the matching backward (dx = (dx̂ − x̂(x̂·dx̂)) / max(‖x‖, 1e-12)).
import type { Binding, Program } from '../../gpu/program.js';
import { l2Norm, l2NormalizeBackward } from '../shared/l2.js';

export class CopyRowsProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'src', kind: 'read' },
    { name: 'dst', kind: 'rw' },
  ];
  readonly params = [
    ['rows', 'u32'],
    ['srcRowsPerHead', 'u32'],
    ['srcOffset', 'u32'],
    ['dstRowsPerHead', 'u32'],
    ['dstOffset', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];

  constructor(
    readonly dim: number,
    readonly normalize: boolean,
    wg: number,
  ) {
    this.shaderKey = `copy-rows-d${dim}-n${normalize ? 1 : 0}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    const D = this.dim;
    return /* wgsl */ `
const D: u32 = ${D}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let r = gid.x;
  let head = gid.y;
  if (r >= P.rows) { return; }
  let s = (head * P.srcRowsPerHead + P.srcOffset + r) * D;
  let t = (head * P.dstRowsPerHead + P.dstOffset + r) * D;
  ${
    this.normalize
      ? `${l2Norm('norm', 'D', (d) => `src[s + ${d}]`)}
  let inv = 1.0 / normDiv;
  for (var d = 0u; d < D; d++) { dst[t + d] = src[s + d] * inv; }`
      : `for (var d = 0u; d < D; d++) { dst[t + d] = src[s + d]; }`
  }
}`;
  }
}

/** dx from dx̂ for x̂ = x / max(‖x‖, 1e-12); rows of x, x̂ and dx̂ share one layout. */
export class NormalizeBackwardProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'x', kind: 'read' },
    { name: 'dxHat', kind: 'read' },
    { name: 'dx', kind: 'rw' },
  ];
  readonly params = [['rows', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];

  constructor(
    readonly dim: number,
    wg: number,
  ) {
    this.shaderKey = `normalize-backward-d${dim}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }

  body(): string {
    return /* wgsl */ `
const D: u32 = ${this.dim}u;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG_X;
  if (r >= P.rows) { return; }
  let base = r * D;
  ${l2NormalizeBackward(
    'D',
    (d) => `x[base + ${d}]`,
    (d) => `dxHat[base + ${d}]`,
    (d, v) => `dx[base + ${d}] = ${v}`,
  )}
}`;
  }
}
