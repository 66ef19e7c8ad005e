// Numbers as the page shows them.

/**
 * x with `digits` decimals and en-US thousands separators. Not toLocaleString: the page's first
 * Intl call loads locale data (~30 ms of main-thread CPU here, ~100 ms on the loaded VM).
 */
export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return String(x);
  const [int, frac] = Math.abs(x).toFixed(digits).split('.');
  const sign = x < 0 ? '-' : ''; // as Intl: -0.001 → "-0"
  return `${sign}${int.replace(/\B(?=(\d{3})+(?!\d))/g, ',')}${frac ? `.${frac}` : ''}`;
}
