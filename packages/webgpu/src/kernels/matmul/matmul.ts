// The yardstick: a register-blocked tiled matmul C[M,N] = A[M,K]·B[K,N]. It only measures how
// close the OVQ kernels get to this adapter's peak; no OVQ path uses it.
import type { Binding, Program } from '../../gpu/program.js';

/** Output tile per workgroup: 8×8 threads, each computing a 4×4 block. */
export const MATMUL_TILE = 32;

export class MatmulProgram implements Program {
  readonly shaderKey = 'matmul-32x32x16';
  readonly bindings: Binding[] = [
    { name: 'A', kind: 'read' },
    { name: 'B', kind: 'read' },
    { name: 'C', kind: 'rw' },
  ];
  readonly params = [
    ['M', 'u32'],
    ['N', 'u32'],
    ['K', 'u32'],
  ] as const;
  readonly workgroupSize = [64, 1, 1] as const;

  body(): string {
    return /* wgsl */ `
const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 16u;
var<workgroup> As: array<f32, 512>;
var<workgroup> Bs: array<f32, 512>;

// A 1-D workgroup viewed as 8×8 threads.
@compute @workgroup_size(64, 1, 1)
fn main(@builtin(local_invocation_id) l: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let row0 = wid.y * TM;
  let col0 = wid.x * TN;
  let tid = l.x;
  let lid = vec2u(tid % 8u, tid / 8u);
  var acc: array<f32, 16>;
  for (var k0 = 0u; k0 < P.K; k0 += TK) {
    for (var e = tid; e < TM * TK; e += 64u) {
      let r = row0 + e / TK;
      let c = k0 + e % TK;
      var a = 0.0;
      if (r < P.M && c < P.K) { a = A[r * P.K + c]; }
      As[e] = a;
      let br = k0 + e / TN;
      let bc = col0 + e % TN;
      var b = 0.0;
      if (br < P.K && bc < P.N) { b = B[br * P.N + bc]; }
      Bs[e] = b;
    }
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      var a: array<f32, 4>;
      var b: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        a[i] = As[(lid.y * 4u + i) * TK + kk];
        b[i] = Bs[kk * TN + lid.x * 4u + i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i * 4u + j] = acc[i * 4u + j] + a[i] * b[j];
        }
      }
    }
    workgroupBarrier();
  }
  for (var i = 0u; i < 4u; i++) {
    for (var j = 0u; j < 4u; j++) {
      let r = row0 + lid.y * 4u + i;
      let c = col0 + lid.x * 4u + j;
      if (r < P.M && c < P.N) { C[r * P.N + c] = acc[i * 4u + j]; }
    }
  }
}`;
  }
}
