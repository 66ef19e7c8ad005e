export const APP: string;
export const STATIC_FILES: string[];
export function bundleOptions(): Record<string, unknown>;
export function outputOptions(
  outDir: string,
  options?: { minify?: boolean },
): Record<string, unknown>;
export function copyStatic(outDir: string): void;
/** Writes the site into outDir (default dist/); returns outDir. */
export function buildSite(outDir?: string, options?: { minify?: boolean }): Promise<string>;
