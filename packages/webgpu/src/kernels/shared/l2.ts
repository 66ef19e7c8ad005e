// L2 normalisation x̂ = x / max(‖x‖, 1e-12) (as @ovq/core and @ovq/baselines), forward norm and
// backward, written once for the row-copy kernel, the OVQ backward's dk and Gated DeltaNet.

export const L2_EPS = '1e-12';

/**
 * WGSL statements: `let <name> = ‖x‖` and `let <name>Div = max(‖x‖, 1e-12)` for a row of `dim`
 * elements, element d read by `at(d)`; squares summed in element order.
 */
export function l2Norm(name: string, dim: string, at: (d: string) => string): string {
  return `var ${name}Sq = 0.0;
  for (var d = 0u; d < ${dim}; d++) { let xv = ${at('d')}; ${name}Sq = ${name}Sq + xv * xv; }
  let ${name} = sqrt(${name}Sq);
  let ${name}Div = max(${name}, ${L2_EPS});`;
}

/**
 * WGSL statements: dx = (dx̂ − x̂(x̂·dx̂)) / max(‖x‖, 1e-12) for one row, x̂ = x / max(‖x‖, 1e-12);
 * `x(d)` and `dxHat(d)` read element d, `store(d, v)` writes dx. Below the clamp the divisor is
 * constant, so the projection term vanishes.
 */
export function l2NormalizeBackward(
  dim: string,
  x: (d: string) => string,
  dxHat: (d: string) => string,
  store: (d: string, v: string) => string,
): string {
  return `${l2Norm('norm', dim, x)}
  var proj = 0.0;
  if (norm > ${L2_EPS}) { for (var d = 0u; d < ${dim}; d++) { proj = proj + (${x('d')} / normDiv) * ${dxHat('d')}; } }
  for (var d = 0u; d < ${dim}; d++) { ${store('d', `(${dxHat('d')} - (${x('d')} / normDiv) * proj) / normDiv`)}; }`;
}
