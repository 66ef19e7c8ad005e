// Versioned training checkpoints: weights, AdamW moments, step, seeds and config in one file,
// written atomically (temporary file, fsync, rename) so a crash never leaves a half checkpoint.
// Layout: "OVQC" · u32 version · u32 header bytes · JSON header · float32 payload (little-endian).
import * as tf from '@tensorflow/tfjs-core';

export const CHECKPOINT_VERSION = 1;
const MAGIC = 0x4351564f; // "OVQC" as a little-endian u32

type Entry = { name: string; shape: number[]; offset: number };
export type CheckpointHeader = {
  version: number;
  step: number;
  config: unknown;
  /** Data and model seeds: batches are a pure function of (seed, step), so this is the RNG state. */
  rng: { seed: number; step: number };
  optimizer: { step: number };
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

/** Serialises a checkpoint; tensors are read asynchronously (webgpu has no synchronous reads). */
export async function encodeCheckpoint(c: CheckpointContents): Promise<Uint8Array> {
  const chunks: Float32Array[] = [];
  let offset = 0;
  const entries = async (tensors: Map<string, tf.Tensor>): Promise<Entry[]> => {
    const list = [...tensors];
    const values = await Promise.all(list.map(([, t]) => t.data() as Promise<Float32Array>));
    return list.map(([name, t], i) => {
      chunks.push(values[i]);
      const e = { name, shape: t.shape, offset };
      offset += values[i].length;
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
    weights,
    moments: { m, v },
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = Math.ceil((12 + json.length) / 4) * 4;
  const bytes = new Uint8Array(start + offset * 4);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, CHECKPOINT_VERSION, true);
  view.setUint32(8, json.length, true);
  bytes.set(json, 12);
  let at = start;
  for (const chunk of chunks)
    for (let i = 0; i < chunk.length; i++, at += 4) view.setFloat32(at, chunk[i], true);
  return bytes;
}

export function decodeCheckpoint(bytes: Uint8Array, source = 'checkpoint'): CheckpointContents {
  const fail = (why: string): never => {
    throw new Error(`${source}: ${why}`);
  };
  if (bytes.length < 12) fail('file too short to be a checkpoint');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('not an OVQ checkpoint (bad magic)');
  const version = view.getUint32(4, true);
  if (version !== CHECKPOINT_VERSION)
    fail(`format version ${version}; this build reads version ${CHECKPOINT_VERSION}`);
  const length = view.getUint32(8, true);
  let header: CheckpointHeader;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  } catch {
    return fail('header is not valid JSON');
  }
  const start = Math.ceil((12 + length) / 4) * 4;
  const floats = (bytes.length - start) / 4;
  const read = (entries: Entry[]) =>
    new Map(
      entries.map((e) => {
        const size = e.shape.reduce((a, b) => a * b, 1);
        if (e.offset + size > floats) fail(`tensor ${e.name} runs past the end of the file`);
        const data = new Float32Array(size);
        for (let i = 0; i < size; i++) data[i] = view.getFloat32(start + (e.offset + i) * 4, true);
        if (!data.every(Number.isFinite)) fail(`tensor ${e.name} holds non-finite values`);
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

/** Writes `bytes` to `path` atomically: a crash leaves either the old file or the new one. */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const { open, rename } = await import('node:fs/promises');
  const temporary = `${path}.tmp-${process.pid}`;
  const handle = await open(temporary, 'w');
  try {
    await handle.writeFile(bytes);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, path);
}
