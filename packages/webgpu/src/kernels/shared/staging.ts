// Row staging through workgroup memory, written once for every tiled kernel (the OVQ read and its
// backward, the softmax attention forward and backward): a tile of TR rows of a [rows, d] operand
// is copied into a `var<workgroup>` array of vec4s, every thread taking every WG_X-th vec4, rows
// past the end as zeros. Needs `const TR` and the `DIM4` constant of the row width in the shader.

/** `var<workgroup> name: array<vec4<f32>, tile·⌈dim/4⌉>;` — the staged tile of one operand. */
export function tileArray(name: string, tile: number, dim: number): string {
  return `var<workgroup> ${name}: array<vec4<f32>, ${tile * Math.ceil(dim / 4)}>;\n`;
}

/** `var<workgroup> name: array<f32, tile>;` — one staged scalar per row (bias, lse, Δ…). */
export function tileScalars(name: string, tile: number): string {
  return `var<workgroup> ${name}: array<f32, ${tile}>;\n`;
}

export type StageRows = {
  /** The workgroup array (from `tileArray`). */
  into: string;
  /** WGSL constant holding the row width in vec4s (e.g. `DK4`). */
  dim4: string;
  /** Name of the row index inside the loop (`s`, `t`…). */
  row: string;
  /** First row of the tile. */
  from: string;
  /** Rows at or past this are staged as zeros. */
  end: string;
  /**
   * WGSL statements that set `var x: vec4<f32>` for row `row`, given the vec4 index within
   * the row as a WGSL expression (`e % DIM4`); they run only for rows before `end`.
   */
  load: (vec: string) => string;
};

/** WGSL: stage rows [from, from + TR) of one operand into `into` (no barrier). */
export function stageRows(o: StageRows): string {
  return `
    for (var e = lid.x; e < TR * ${o.dim4}; e += WG_X) {
      let ${o.row} = ${o.from} + e / ${o.dim4};
      var x = vec4<f32>(0.0);
      if (${o.row} < ${o.end}) { ${o.load(`e % ${o.dim4}`)} }
      ${o.into}[e] = x;
    }`;
}

/** WGSL: a loop over the tile's rows, thread e taking row `from + e` (for per-row scalars). */
export function forTileRows(row: string, from: string, body: string): string {
  return `
    for (var e = lid.x; e < TR; e += WG_X) {
      let ${row} = ${from} + e;${body}
    }`;
}
