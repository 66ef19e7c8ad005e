// The packed key/value gradients dKV unpacked into dk (through the L2-normalise backward) and dv.
import type { Binding, Program } from '../../../gpu/program.js';
import { l2NormalizeBackward } from '../../shared/l2.js';

/** dk = normalize-backward of the packed dKV key part (or a copy), dv = its value part. */
export class OvqGradOutProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'k', kind: 'read' },
    { name: 'dKV', kind: 'read' },
    { name: 'dk', kind: 'rw' },
    { name: 'dv', kind: 'rw' },
  ];
  readonly params = [['rows', 'u32']] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dkDim: number,
    readonly dvDim: number,
    readonly normalize: boolean,
    wg: number,
  ) {
    this.shaderKey = `ovq-grad-out-dk${dkDim}-dv${dvDim}-n${normalize ? 1 : 0}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return /* wgsl */ `
const DK: u32 = ${this.dkDim}u;
const DV: u32 = ${this.dvDim}u;
const E: u32 = DK + DV;
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let r = gid.x + gid.y * nwg.x * WG_X;
  if (r >= P.rows) { return; }
  for (var d = 0u; d < DV; d++) { dv[r * DV + d] = dKV[r * E + DK + d]; }
  ${
    this.normalize
      ? l2NormalizeBackward(
          'DK',
          (d) => `k[r * DK + ${d}]`,
          (d) => `dKV[r * E + ${d}]`,
          (d, v) => `dk[r * DK + ${d}] = ${v}`,
        )
      : 'for (var d = 0u; d < DK; d++) { dk[r * DK + d] = dKV[r * E + d]; }'
  }
}`;
  }
}
