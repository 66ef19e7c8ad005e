// Online (max-subtracted) softmax pieces, written once for the OVQ read, its partial combine and
// the softmax attention forward. Running max m starts at wgsl.ts's NEG_BIG (WGSL has no −∞), and no kernel
// takes exp() of that sentinel: SwiftShader's exp(−3e38) is not 0.
/** A logit or running max above this is live; NEG_BIG marks masked rows and empty partials. */
export const LIVE = '-1.0e38';

/**
 * WGSL: `fn expLive(x, m)` = exp(x − m) for a live x, else 0. It is both a row's weight under the
 * running max m and the factor that rescales a running sum from max x to max m.
 */
export const EXP_LIVE_WGSL = `
fn expLive(x: f32, m: f32) -> f32 {
  if (x > ${LIVE}) { return exp(x - m); }
  return 0.0;
}
`;

/**
 * WGSL statements: raise the running max `m` of a sum `l` to cover `x`: `let next = max(m, x)`,
 * `scale` = e^{m − next} (0 while m is the sentinel and l is still 0), `l *= scale`. The caller
 * rescales its accumulators by `scale` (needed only when next > m) and then sets m = next.
 */
export function onlineMax(o: {
  m: string;
  l: string;
  x: string;
  /** Where the factor goes; with `declare`, a new `let` of that name. */
  scale: string;
  declare?: boolean;
  next: string;
}): string {
  return `let ${o.next} = max(${o.m}, ${o.x});
      ${o.declare ? 'let ' : ''}${o.scale} = expLive(${o.m}, ${o.next});
      ${o.l} = ${o.l} * ${o.scale};`;
}
