// WGSL snippets shared by the kernels. Per-thread vectors are arrays of vec4<f32> (dims padded
// to a multiple of 4 with zeros): large scalar private arrays were miscompiled by llvmpipe (whole
// lane groups skipped their writes at dim 64), and vec4 math is faster on every adapter.

/** `const NAME: u32 = dim; const NAME4: u32 = ceil(dim / 4);` */
export function dimConsts(name: string, dim: number): string {
  return `const ${name}: u32 = ${dim}u;\nconst ${name}4: u32 = ${Math.ceil(dim / 4)}u;\n`;
}

/** fn `fnName`(base, i) -> vec4: elements 4i…4i+3 of a row of `dim` floats at buffer[base]. */
export function loadVecFn(fnName: string, buffer: string, dimConst: string, dim: number): string {
  if (dim % 4 === 0) {
    return `fn ${fnName}(base: u32, i: u32) -> vec4<f32> { let b = base + 4u * i; return vec4<f32>(${buffer}[b], ${buffer}[b + 1u], ${buffer}[b + 2u], ${buffer}[b + 3u]); }\n`;
  }
  return `fn ${fnName}(base: u32, i: u32) -> vec4<f32> {
  var r = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) { let d = 4u * i + j; if (d < ${dimConst}) { r[j] = ${buffer}[base + d]; } }
  return r;
}\n`;
}

/** fn `fnName`(base, i, v): stores the valid lanes of v at buffer[base + 4i …]. */
export function storeVecFn(fnName: string, buffer: string, dimConst: string, dim: number): string {
  if (dim % 4 === 0) {
    return `fn ${fnName}(base: u32, i: u32, v: vec4<f32>) { let b = base + 4u * i; ${buffer}[b] = v.x; ${buffer}[b + 1u] = v.y; ${buffer}[b + 2u] = v.z; ${buffer}[b + 3u] = v.w; }\n`;
  }
  return `fn ${fnName}(base: u32, i: u32, v: vec4<f32>) {
  for (var j = 0u; j < 4u; j++) { let d = 4u * i + j; if (d < ${dimConst}) { ${buffer}[base + d] = v[j]; } }
}\n`;
}

/** The largest float sentinel used as −∞ (WGSL has no infinity literal). */
export const NEG_BIG = '-3.0e38';
export const POS_BIG = '3.0e38';
