// A WGSL program is a small description: a cache key, its bindings, a uniform parameter block,
// a workgroup size and the shader body. `buildShader` adds the declarations every program shares.

export type BindingKind = 'read' | 'rw';
export type Binding = { name: string; kind: BindingKind; type?: 'f32' | 'i32' | 'u32' };
export type ParamType = 'u32' | 'i32' | 'f32';

export interface Program {
  /** Pipeline-cache key: everything that changes the generated WGSL. */
  readonly shaderKey: string;
  /** Storage buffers, bound at 1…n (binding 0 is the parameter block). */
  readonly bindings: readonly Binding[];
  /** Uniform parameters, in order (4 bytes each). */
  readonly params: readonly (readonly [string, ParamType])[];
  readonly workgroupSize: readonly [number, number, number];
  /** The shader body: helper functions and `fn main(...)`, using `P.<param>` and the bindings. */
  body(): string;
  /** WGSL extensions to enable (e.g. 'subgroups'); the device must have the feature. */
  readonly enables?: readonly string[];
}

/** At most this many 4-byte parameters per program (one 256-byte dynamic-offset slot). */
export const MAX_PARAMS = 32;

export function buildShader(p: Program): string {
  const fields = p.params.map(([name, type]) => `  ${name}: ${type},`).join('\n');
  const decls = p.bindings
    .map((b, i) => {
      const access = b.kind === 'read' ? 'read' : 'read_write';
      return `@group(0) @binding(${i + 1}) var<storage, ${access}> ${b.name}: array<${b.type ?? 'f32'}>;`;
    })
    .join('\n');
  const [x, y, z] = p.workgroupSize;
  const enables = (p.enables ?? []).map((e) => `enable ${e};\n`).join('');
  return `${enables}struct Params {\n${fields || '  unused: u32,'}\n}\n@group(0) @binding(0) var<uniform> P: Params;\n${decls}\nconst WG_X: u32 = ${x}u;\nconst WG_Y: u32 = ${y}u;\nconst WG_Z: u32 = ${z}u;\n${p.body()}`;
}

/** ceil(a / b) for dispatch sizes. */
export function ceilDiv(a: number, b: number): number {
  return Math.ceil(a / b);
}

/**
 * A (x, y, z) grid for `elements` threads per head in 1-D workgroups of `wg`, split over x and y
 * so neither exceeds maxComputeWorkgroupsPerDimension (65,535 by default); heads go in z. The
 * kernel's flat index is gid.x + gid.y · nwg.x · wg, and it must skip indices past the end.
 */
export function grid2d(
  elements: number,
  wg: number,
  heads: number,
  maxPerDim = 65535,
): [number, number, number] {
  const groups = ceilDiv(elements, wg);
  const y = ceilDiv(groups, maxPerDim);
  return [ceilDiv(groups, y), y, heads];
}
