// The dictionary packed as rows of (key, value, count), W = dk + dv + 1 floats: the backward's
// working copy BD and the forward's checkpoints of it (packing keeps kernels within 8 buffers).
import type { Binding, Program } from '../../../gpu/program.js';

/** WGSL: element e of packed row i of Dk/Dv/cnt, stored at `dst` (one thread per element). */
function packBody(dk: number, dv: number, dst: string): string {
  return /* wgsl */ `
const DK: u32 = ${dk}u;
const DV: u32 = ${dv}u;
const W: u32 = DK + DV + 1u;
// 2-D grid (x, y) over rows·W elements, head in z: rows·W can exceed one dimension's limit.
@compute @workgroup_size(WG_X, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let head = gid.z;
  let flat = gid.x + gid.y * nwg.x * WG_X;
  let e = flat % W;
  let i = flat / W;
  if (i >= P.rows) { return; }
  var x = cnt[head * P.N + i];
  if (e < DK) { x = Dk[(head * P.N + i) * DK + e]; } else if (e < DK + DV) { x = Dv[(head * P.N + i) * DV + e - DK]; }
  ${dst} = x;
}`;
}

export class OvqPackDictionaryProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'Dk', kind: 'read' },
    { name: 'Dv', kind: 'read' },
    { name: 'cnt', kind: 'read' },
    { name: 'BD', kind: 'rw' },
  ];
  readonly params = [
    ['rows', 'u32'],
    ['N', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-pack-dict-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return packBody(this.dk, this.dv, 'BD[(head * P.N + i) * W + e]');
  }
}

/**
 * `update: ema` checkpoint: the dictionary (keys, values, counts) packed as in BD into slot
 * `slot` of CP [slots, heads, N, W], W = dk + dv + 1. Taken in the forward before every
 * ⌈√absorbs⌉-th absorb; the backward copies a slot into BD and replays absorbs from there.
 */
export class OvqCheckpointProgram implements Program {
  readonly shaderKey: string;
  readonly bindings: Binding[] = [
    { name: 'Dk', kind: 'read' },
    { name: 'Dv', kind: 'read' },
    { name: 'cnt', kind: 'read' },
    { name: 'CP', kind: 'rw' },
  ];
  readonly params = [
    ['rows', 'u32'],
    ['N', 'u32'],
    ['slot', 'u32'],
    ['heads', 'u32'],
  ] as const;
  readonly workgroupSize: readonly [number, number, number];
  constructor(
    readonly dk: number,
    readonly dv: number,
    wg: number,
  ) {
    this.shaderKey = `ovq-checkpoint-dk${dk}-dv${dv}-wg${wg}`;
    this.workgroupSize = [wg, 1, 1];
  }
  body(): string {
    return packBody(this.dk, this.dv, 'CP[((P.slot * P.heads + head) * P.N + i) * W + e]');
  }
}
