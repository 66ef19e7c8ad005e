// Node module hooks that let a pool worker run from the TypeScript sources (tests use the
// `@ovq/source` condition, so the pool's own module is a .ts file there). Only used when the pool
// module itself is TypeScript; the built package's workers are plain JavaScript and need none of
// this. TypeScript is a development dependency: sources are only run under a TS toolchain.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// Transpiled files are cached on disk by path, size and mtime: loading TypeScript costs seconds
// per worker, a cache hit costs a file read.
const cacheDir = join(tmpdir(), 'ovq-source-hooks-cache');

let ts;

export async function resolve(specifier, context, next) {
  // Sources import siblings as './x.js' (NodeNext style); the file on disk is './x.ts'.
  if (
    context.parentURL?.endsWith('.ts') &&
    specifier.startsWith('.') &&
    specifier.endsWith('.js')
  ) {
    const url = new URL(`${specifier.slice(0, -3)}.ts`, context.parentURL);
    if (existsSync(fileURLToPath(url))) return { url: url.href, shortCircuit: true };
  }
  return next(specifier, context);
}

export async function load(url, context, next) {
  if (!url.startsWith('file:') || !url.endsWith('.ts')) return next(url, context);
  const file = fileURLToPath(url);
  const { size, mtimeMs } = statSync(file);
  const key = createHash('sha1').update(`${file}\0${size}\0${mtimeMs}`).digest('hex');
  const cached = join(cacheDir, `${key}.js`);
  if (existsSync(cached)) {
    return { format: 'module', source: readFileSync(cached, 'utf8'), shortCircuit: true };
  }
  ts ??= (await import('typescript')).default;
  const source = readFileSync(file, 'utf8');
  const { outputText } = ts.transpileModule(source, {
    fileName: fileURLToPath(url),
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
    },
  });
  mkdirSync(cacheDir, { recursive: true });
  const temp = `${cached}.${process.pid}.${Math.random().toString(36).slice(2)}`;
  writeFileSync(temp, outputText);
  renameSync(temp, cached);
  return { format: 'module', source: outputText, shortCircuit: true };
}
