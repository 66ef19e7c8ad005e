// Builds the static site into a folder: src/main.ts (the page) and src/worker.ts (the CPU path's
// Web Worker) bundled by rolldown (workspace packages from their TypeScript sources, `@ovq/source`
// condition; code they share goes to chunk files) plus index.html and styles.css, with relative
// asset paths so the folder works from any static host or sub-path.
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rolldown } from 'rolldown';

export const APP = join(dirname(fileURLToPath(import.meta.url)), '..');
export const STATIC_FILES = ['index.html', 'styles.css'];

export function bundleOptions() {
  return {
    input: { main: join(APP, 'src', 'main.ts'), worker: join(APP, 'src', 'worker.ts') },
    platform: 'browser',
    resolve: {
      conditionNames: ['@ovq/source', 'import', 'browser', 'default'],
      extensionAlias: { '.js': ['.ts', '.js'] },
    },
  };
}

/** Output options: main.js, worker.js and shared chunks side by side. */
export function outputOptions(outDir, { minify = false } = {}) {
  return {
    dir: outDir,
    format: 'esm',
    entryFileNames: '[name].js',
    chunkFileNames: '[name]-[hash].js',
    minify,
    sourcemap: true,
  };
}

export function copyStatic(outDir) {
  for (const f of STATIC_FILES) copyFileSync(join(APP, 'src', f), join(outDir, f));
}

/** Writes the site into outDir (default dist/); returns outDir. */
export async function buildSite(outDir = join(APP, 'dist'), { minify = true } = {}) {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const bundle = await rolldown(bundleOptions());
  try {
    await bundle.write(outputOptions(outDir, { minify }));
  } finally {
    await bundle.close();
  }
  copyStatic(outDir);
  return outDir;
}
