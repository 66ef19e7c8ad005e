// Versioned training checkpoints: weights, AdamW moments, step, seeds and config in one file,
// written atomically (unique temporary file, fsync, rename, fsync of the folder) so a crash never
// leaves a half checkpoint, and checksummed so a corrupt one is refused instead of loaded.
// Layout (version 2, little-endian): "OVQC" · u32 version · u32 header bytes · u32 CRC-32 of
// (version, header bytes, JSON header) · JSON header · zero padding to 4 bytes · float32 payload.
// The header lists every tensor with its offset, shape and the CRC-32 of its payload bytes.
import * as tf from '@tensorflow/tfjs-core';
import { crc32 } from './crc32.js';

export const CHECKPOINT_VERSION = 2;
const MAGIC = 0x4351564f; // "OVQC" as a little-endian u32
const PREFIX = 16;
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

type Entry = { name: string; shape: number[]; offset: number; crc32: number };
export type CheckpointHeader = {
  version: number;
  step: number;
  config: unknown;
  /** Data and model seeds: batches are a pure function of (seed, step), so this is the RNG state. */
  rng: { seed: number; step: number };
  optimizer: { step: number };
  /** float32 values in the payload; the file is exactly header + 4·payloadFloats bytes. */
  payloadFloats: number;
  weights: Entry[];
  moments: { m: Entry[]; v: Entry[] };
};

export type CheckpointContents = {
  step: number;
  config: unknown;
  rng: { seed: number; step: number };
  optimizerStep: number;
  weights: Map<string, tf.Tensor>;
  m: Map<string, tf.Tensor>;
  v: Map<string, tf.Tensor>;
};

/** Little-endian bytes of float32 values (a view when the host is little-endian, as all are). */
function float32Bytes(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(4 * i, values[i], true);
  return bytes;
}

/** Serialises a checkpoint; tensors are read asynchronously (webgpu has no synchronous reads). */
export async function encodeCheckpoint(c: CheckpointContents): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  const entries = async (tensors: Map<string, tf.Tensor>): Promise<Entry[]> => {
    const list = [...tensors];
    const values = await Promise.all(list.map(([, t]) => t.data()));
    return list.map(([name, t], i) => {
      const data = values[i] instanceof Float32Array ? values[i] : Float32Array.from(values[i]);
      const bytes = float32Bytes(data as Float32Array);
      chunks.push(bytes);
      const e = { name, shape: t.shape, offset, crc32: crc32(bytes) };
      offset += data.length;
      return e;
    });
  };
  // Weights, then m, then v: the payload order the offsets describe.
  const weights = await entries(c.weights);
  const m = await entries(c.m);
  const v = await entries(c.v);
  const header: CheckpointHeader = {
    version: CHECKPOINT_VERSION,
    step: c.step,
    config: c.config,
    rng: c.rng,
    optimizer: { step: c.optimizerStep },
    payloadFloats: offset,
    weights,
    moments: { m, v },
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((PREFIX + json.length) / 4) * 4;
  const bytes = new Uint8Array(start + offset * 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, CHECKPOINT_VERSION, true);
  view.setUint32(8, json.length, true);
  bytes.set(json, PREFIX);
  view.setUint32(12, crc32(json, crc32(bytes.subarray(4, 12))), true);
  let at = start;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}

/** A checkpoint whose header and every tensor block passed their checksums. */
export type VerifiedCheckpoint = {
  header: CheckpointHeader;
  /** float32 values of one header entry (a fresh copy). */
  values(entry: { name: string; shape: number[]; offset: number }): Float32Array;
};

function isEntryList(x: unknown): x is Entry[] {
  return (
    Array.isArray(x) &&
    x.every(
      (e) =>
        typeof e?.name === 'string' &&
        Array.isArray(e.shape) &&
        e.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0) &&
        Number.isInteger(e.offset) &&
        e.offset >= 0 &&
        Number.isInteger(e.crc32),
    )
  );
}

/**
 * Checks a checkpoint's magic, version, header checksum, size and the checksum of every tensor
 * block, without creating tensors. Throws `${source}: why` for anything wrong: a corrupt file is
 * never loaded.
 */
export function verifyCheckpoint(bytes: Uint8Array, source = 'checkpoint'): VerifiedCheckpoint {
  const fail = (why: string): never => {
    throw new Error(`${source}: ${why}`);
  };
  if (bytes.length < 12) fail(`file too short to be a checkpoint (${bytes.length} bytes)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('not an OVQ checkpoint (bad magic)');
  const version = view.getUint32(4, true);
  if (version === 1)
    fail(
      `format version 1 (written before checkpoints carried checksums) is not read by this build, which reads version ${CHECKPOINT_VERSION}; start a new run`,
    );
  if (version !== CHECKPOINT_VERSION)
    fail(`format version ${version}; this build reads version ${CHECKPOINT_VERSION}`);
  if (bytes.length < PREFIX) fail(`file too short to be a checkpoint (${bytes.length} bytes)`);
  const length = view.getUint32(8, true);
  if (PREFIX + length > bytes.length)
    fail(`header of ${length} bytes runs past the end of the file (${bytes.length} bytes)`);
  const json = bytes.subarray(PREFIX, PREFIX + length);
  if (crc32(json, crc32(bytes.subarray(4, 12))) !== view.getUint32(12, true))
    fail('header fails its CRC-32 checksum (the file is corrupt)');
  let header: CheckpointHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(json));
  } catch {
    return fail('header is not valid JSON');
  }
  if (
    !isEntryList(header.weights) ||
    !isEntryList(header.moments?.m) ||
    !isEntryList(header.moments?.v) ||
    !Number.isInteger(header.payloadFloats) ||
    !Number.isInteger(header.step) ||
    !Number.isInteger(header.optimizer?.step)
  )
    fail('header does not describe a checkpoint (missing or malformed fields)');
  const start = Math.ceil((PREFIX + length) / 4) * 4;
  const expected = start + header.payloadFloats * 4;
  if (bytes.length < expected)
    fail(`file is truncated: ${bytes.length} bytes, the header describes ${expected}`);
  if (bytes.length > expected)
    fail(`file has ${bytes.length - expected} bytes after the payload the header describes`);
  const block = (e: { name: string; shape: number[]; offset: number }) => {
    const size = e.shape.reduce((a, b) => a * b, 1);
    if (e.offset + size > header.payloadFloats)
      fail(`tensor ${e.name} runs past the end of the file`);
    const from = start + e.offset * 4;
    return bytes.subarray(from, from + size * 4);
  };
  for (const e of [...header.weights, ...header.moments.m, ...header.moments.v]) {
    if (crc32(block(e)) !== e.crc32)
      fail(`tensor ${e.name} fails its CRC-32 checksum (the file is corrupt)`);
  }
  return {
    header,
    values(e) {
      const raw = block(e);
      const data = new Float32Array(raw.length / 4);
      if (LITTLE_ENDIAN) new Uint8Array(data.buffer).set(raw);
      else {
        const v = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
        for (let i = 0; i < data.length; i++) data[i] = v.getFloat32(4 * i, true);
      }
      return data;
    },
  };
}

/** Verifies a checkpoint (see verifyCheckpoint) and turns its blocks into tensors. */
export function decodeCheckpoint(bytes: Uint8Array, source = 'checkpoint'): CheckpointContents {
  const { header, values } = verifyCheckpoint(bytes, source);
  const read = (entries: Entry[]) =>
    new Map(
      entries.map((e) => {
        const data = values(e);
        if (!data.every(Number.isFinite))
          throw new Error(`${source}: tensor ${e.name} holds non-finite values`);
        return [e.name, tf.tensor(data, e.shape)] as [string, tf.Tensor];
      }),
    );
  return {
    step: header.step,
    config: header.config,
    rng: header.rng,
    optimizerStep: header.optimizer.step,
    weights: read(header.weights),
    m: read(header.moments.m),
    v: read(header.moments.v),
  };
}

/**
 * Reads a checkpoint file; a missing or unreadable file is an error that says so (not a raw
 * ENOENT). Pair with verifyCheckpoint or decodeCheckpoint.
 */
export async function readCheckpointFile(path: string): Promise<Uint8Array> {
  const { readFile } = await import('node:fs/promises');
  try {
    return new Uint8Array(await readFile(path));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      code === 'ENOENT'
        ? `${path}: no checkpoint there (the file does not exist)`
        : `${path}: cannot read the checkpoint (${code ?? (e as Error).message})`,
    );
  }
}

/** Temporary names are `${path}.tmp-${pid}-${random}`: unique per writer and per write. */
const TEMP_INFIX = '.tmp-';

/**
 * Writes `bytes` to `path` atomically: a unique temporary file in the same folder is written and
 * fsynced, renamed over `path`, and the folder is fsynced so the rename itself survives a power
 * loss. A crash leaves either the old file or the new one (plus, at worst, a stale temporary that
 * removeStaleTemporaries deletes).
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const { open, rename, rm } = await import('node:fs/promises');
  const { randomBytes } = await import('node:crypto');
  const { dirname } = await import('node:path');
  const temporary = `${path}${TEMP_INFIX}${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    const handle = await open(temporary, 'wx');
    try {
      await handle.writeFile(bytes);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, path);
  } catch (e) {
    await rm(temporary, { force: true });
    throw e;
  }
  await syncFolder(dirname(path));
}

/** fsync of a folder (makes a rename durable); platforms that cannot open folders skip it. */
async function syncFolder(folder: string): Promise<void> {
  const { open } = await import('node:fs/promises');
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(folder, 'r');
    await handle.sync();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Windows cannot open or fsync a folder; nothing more can be done there.
    if (code !== 'EISDIR' && code !== 'EPERM' && code !== 'EINVAL' && code !== 'EACCES') throw e;
  } finally {
    await handle?.close();
  }
}

/**
 * Deletes temporaries of `path` (`${path}.tmp-*`) left by writes that were killed; returns the
 * names removed. Call it when a run starts, before any write of its own.
 */
export async function removeStaleTemporaries(path: string): Promise<string[]> {
  const { readdir, rm } = await import('node:fs/promises');
  const { basename, dirname, join } = await import('node:path');
  const folder = dirname(path);
  const prefix = `${basename(path)}${TEMP_INFIX}`;
  let names: string[];
  try {
    names = await readdir(folder);
  } catch {
    return [];
  }
  const stale = names.filter((n) => n.startsWith(prefix));
  for (const name of stale) await rm(join(folder, name), { force: true });
  return stale;
}
