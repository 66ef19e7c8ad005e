import '@tensorflow/tfjs';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CHECKPOINT_VERSION,
  crc32,
  crc32Bytewise,
  createTfjsMixer,
  DEFAULT_TRAIN_CONFIG,
  decodeCheckpoint,
  encodeCheckpoint,
  loadTrainedModel,
  readCheckpointFile,
  removeStaleTemporaries,
  type TrainConfig,
  train,
  verifyCheckpoint,
  writeFileAtomic,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const tensors = (seed: number, shapes: number[][]) =>
  new Map(shapes.map((s, i) => [`t${i}`, tf.randomNormal(s, 0, 1, 'float32', seed + i)]));

async function sample(): Promise<Uint8Array> {
  return encodeCheckpoint({
    step: 7,
    config: { note: 'test' },
    rng: { seed: 3, step: 7 },
    optimizerStep: 7,
    weights: tensors(1, [[8, 16], [16], [16, 4]]),
    m: tensors(10, [[8, 16], [16], [16, 4]]),
    v: tensors(20, [[8, 16], [16], [16, 4]]),
  });
}

/** Flips `count` distinct bits in bytes [from, to), chosen by a fixed LCG. */
function flipBits(bytes: Uint8Array, count: number, from: number, to: number): Uint8Array {
  const out = bytes.slice();
  const seen = new Set<number>();
  let x = 12345;
  while (seen.size < count) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const bit = from * 8 + (x % ((to - from) * 8));
    if (seen.has(bit)) continue;
    seen.add(bit);
    out[bit >> 3] ^= 1 << (bit & 7);
  }
  return out;
}

describe('checkpoint format', () => {
  it('CRC-32 matches the standard check value', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926);
    const bytes = new TextEncoder().encode('hello, checkpoint');
    expect(crc32(bytes.subarray(7), crc32(bytes.subarray(0, 7)))).toBe(crc32(bytes));
    // The sliced (8 bytes per step) version equals the byte-at-a-time definition at every length
    // and alignment.
    const data = Uint8Array.from({ length: 300 }, (_, i) => (i * 2654435761) >>> 24);
    for (let start = 0; start < 9; start++)
      for (let end = start; end <= data.length; end += 7)
        expect(crc32(data.subarray(start, end), 0x1234)).toBe(
          crc32Bytewise(data.subarray(start, end), 0x1234),
        );
  });

  it('round-trips every tensor bit for bit', async () => {
    const bytes = await sample();
    expect(new DataView(bytes.buffer).getUint32(4, true)).toBe(CHECKPOINT_VERSION);
    const c = decodeCheckpoint(bytes);
    expect(c.step).toBe(7);
    expect(c.optimizerStep).toBe(7);
    expect(c.config).toEqual({ note: 'test' });
    const w = tensors(1, [[8, 16], [16], [16, 4]]);
    for (const [name, t] of w) expect(c.weights.get(name)!.dataSync()).toEqual(t.dataSync());
    expect(c.v.get('t2')!.shape).toEqual([16, 4]);
  });

  it('50 flipped bits in the weights, one in the header, a cut or extra bytes are all refused', async () => {
    const bytes = await sample();
    const { header } = verifyCheckpoint(bytes);
    const payloadStart = bytes.length - header.payloadFloats * 4;
    const weightsEnd = payloadStart + 4 * (8 * 16 + 16 + 16 * 4);
    expect(() =>
      decodeCheckpoint(flipBits(bytes, 50, payloadStart, weightsEnd), 'ckpt.bin'),
    ).toThrow(/^ckpt\.bin: tensor t\d fails its CRC-32 checksum \(the file is corrupt\)/);
    // One bit in each tensor block in turn (moments included): each is caught.
    for (const e of [...header.weights, ...header.moments.m, ...header.moments.v]) {
      const at = payloadStart + 4 * e.offset;
      expect(() => verifyCheckpoint(flipBits(bytes, 1, at, at + 4))).toThrow(
        new RegExp(`tensor ${e.name} fails its CRC-32`),
      );
    }
    expect(() => verifyCheckpoint(flipBits(bytes, 1, 16, payloadStart - 4))).toThrow(
      /header fails its CRC-32 checksum|header is not valid JSON/,
    );
    expect(() => verifyCheckpoint(flipBits(bytes, 1, 8, 12))).toThrow(/header/);
    expect(() => verifyCheckpoint(bytes.subarray(0, bytes.length - 4))).toThrow(
      /file is truncated: \d+ bytes, the header describes \d+/,
    );
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expect(() => verifyCheckpoint(longer)).toThrow(/4 bytes after the payload/);
    expect(() =>
      verifyCheckpoint(new TextEncoder().encode('PK\u0003\u0004 not a checkpoint')),
    ).toThrow(/not an OVQ checkpoint \(bad magic\)/);
  });

  it('names the version it cannot read (version 1 had no checksums)', async () => {
    const bytes = await sample();
    const old = bytes.slice();
    new DataView(old.buffer).setUint32(4, 1, true);
    expect(() => verifyCheckpoint(old, 'ckpt.bin')).toThrow(
      /^ckpt\.bin: format version 1 \(written before checkpoints carried checksums\) is not read by this build, which reads version 2; start a new run/,
    );
    new DataView(old.buffer).setUint32(4, 9, true);
    expect(() => verifyCheckpoint(old, 'ckpt.bin')).toThrow(
      /^ckpt\.bin: format version 9; this build reads version 2/,
    );
  });

  it('a missing file is named, not a raw ENOENT', async () => {
    await expect(readCheckpointFile('/no/such/run/ckpt.bin')).rejects.toThrow(
      /^\/no\/such\/run\/ckpt\.bin: no checkpoint there \(the file does not exist\)$/,
    );
  });
});

describe('atomic writes', () => {
  it('replace the file through a unique temporary and leave nothing behind', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-ckpt-'));
    const path = join(dir, 'ckpt.bin');
    writeFileSync(path, 'old');
    await Promise.all([
      writeFileAtomic(path, new TextEncoder().encode('new-a')),
      writeFileAtomic(path, new TextEncoder().encode('new-b')),
    ]);
    expect(['new-a', 'new-b']).toContain(readFileSync(path, 'utf8'));
    expect(readdirSync(dir)).toEqual(['ckpt.bin']);
  });

  it('removeStaleTemporaries deletes only the temporaries of that file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-ckpt-'));
    const path = join(dir, 'ckpt.bin');
    for (const n of ['ckpt.bin', 'ckpt.bin.tmp-12', 'ckpt.bin.tmp-99-abcdef', 'other.bin.tmp-1'])
      writeFileSync(join(dir, n), n);
    expect((await removeStaleTemporaries(path)).sort()).toEqual([
      'ckpt.bin.tmp-12',
      'ckpt.bin.tmp-99-abcdef',
    ]);
    expect(readdirSync(dir).sort()).toEqual(['ckpt.bin', 'other.bin.tmp-1']);
  });
});

describe('corrupt checkpoints are never loaded', () => {
  it('resume and loadTrainedModel refuse a checkpoint with 50 flipped bits in its weights', async () => {
    const config: TrainConfig = {
      ...DEFAULT_TRAIN_CONFIG,
      task: { name: 'mqar', vocabSize: 16, numPairs: 1 },
      model: { dModel: 8, heads: 1, layers: 1, mixers: 'softmax' },
      seqLen: 8,
      batchSize: 2,
      steps: 2,
      warmup: 0,
      evalEvery: 2,
      evalBatches: 1,
      evalBatchSize: 2,
    };
    const dir = mkdtempSync(join(tmpdir(), 'ovq-ckpt-'));
    const path = join(dir, 'ckpt.bin');
    (await train(config, { createMixer: createTfjsMixer, checkpointPath: path })).model.dispose();
    const bytes = new Uint8Array(readFileSync(path));
    const { header } = verifyCheckpoint(bytes);
    const payloadStart = bytes.length - header.payloadFloats * 4;
    const weightsFloats = header.moments.m[0].offset;
    writeFileSync(path, flipBits(bytes, 50, payloadStart, payloadStart + 4 * weightsFloats));
    await expect(loadTrainedModel(path, createTfjsMixer)).rejects.toThrow(
      /ckpt\.bin: tensor .+ fails its CRC-32 checksum/,
    );
    await expect(
      train(
        { ...config, steps: 4 },
        { createMixer: createTfjsMixer, checkpointPath: path, resume: true },
      ),
    ).rejects.toThrow(/ckpt\.bin: tensor .+ fails its CRC-32 checksum/);
  });
});
