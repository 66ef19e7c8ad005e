// The page's pieces that run without a browser: the inputs, the softmax cache and KVM probes
// against @ovq/baselines, the memory numbers, and a whole CPU run (engine/run.ts, streamed in
// pieces with yields) against @ovq/core's float64 reference.
import { kvmAttention, softmaxAttention, softmaxStateSize } from '@ovq/baselines';
import { ovqAttentionReference } from '@ovq/core';
import { assertClose, createRng } from '@ovq/core/testing';
import { describe, expect, it } from 'vitest';
import { memoryNumbers } from '../src/engine/memory.js';
import { KvCache, matchedKvmConfig, probeFacts, Yardsticks } from '../src/engine/recall.js';
import { runOvq } from '../src/engine/run.js';
import { KEY_DIM, PROJECTION_SEED, projectBytes, textBytes } from '../src/inputs/project.js';
import { normals, createRng as pageRng } from '../src/inputs/random.js';
import { RECALL_DEFAULTS, recallSequence } from '../src/inputs/recall.js';
import { fmt } from '../src/ui/format.js';

const noGpu = { ctx: null, reason: 'not asked' } as const;

describe('inputs', () => {
  it('bytes: k_t = q_t = A[b_t] + ½B[b_{t−1}], v_t = V[b_t] from the seeded tables', () => {
    const input = projectBytes(textBytes('abca', 100), 'text', 't');
    expect(input.seqLen).toBe(4);
    expect(input.q).toEqual(input.k);
    // The same tables drawn here: A, B then V from PROJECTION_SEED.
    const rng = pageRng(PROJECTION_SEED);
    const a = normals(rng, 256 * KEY_DIM).map((x) => x / 4);
    const b = normals(rng, 256 * KEY_DIM).map((x) => x / 4);
    const v = normals(rng, 256 * KEY_DIM).map((x) => x / 4);
    const c = 'c'.charCodeAt(0);
    const bb = 'b'.charCodeAt(0);
    for (let d = 0; d < KEY_DIM; d++) {
      expect(input.k[2 * KEY_DIM + d]).toBeCloseTo(
        a[c * KEY_DIM + d] + 0.5 * b[bb * KEY_DIM + d],
        6,
      );
      expect(input.v[2 * KEY_DIM + d]).toBeCloseTo(v[c * KEY_DIM + d], 6);
    }
    // The same byte after different bytes gets different keys, the same value.
    expect(input.k.subarray(0, KEY_DIM)).not.toEqual(input.k.subarray(3 * KEY_DIM, 4 * KEY_DIM));
    expect(input.v.subarray(0, KEY_DIM)).toEqual(input.v.subarray(3 * KEY_DIM, 4 * KEY_DIM));
    expect(() => projectBytes(new Uint8Array(0), 'text', 't')).toThrow(/text: got an empty text/);
    expect(textBytes('é'.repeat(10), 5)).toHaveLength(5);
  });

  it('recall: facts at increasing positions hold their keys and values; seeds differ', () => {
    const r = recallSequence();
    const f = r.facts;
    if (!f) throw new Error('no facts');
    expect(r.seqLen).toBe(RECALL_DEFAULTS.seqLen);
    expect(f.count).toBe(RECALL_DEFAULTS.facts);
    for (let i = 0; i < f.count; i++) {
      if (i > 0) expect(f.positions[i]).toBeGreaterThan(f.positions[i - 1]);
      const p = f.positions[i];
      expect(r.k.subarray(p * KEY_DIM, (p + 1) * KEY_DIM)).toEqual(
        f.keys.subarray(i * KEY_DIM, (i + 1) * KEY_DIM),
      );
      expect(r.v.subarray(p * KEY_DIM, (p + 1) * KEY_DIM)).toEqual(
        f.values.subarray(i * KEY_DIM, (i + 1) * KEY_DIM),
      );
    }
    expect(recallSequence().k).toEqual(r.k);
    expect(recallSequence({ seed: 8 }).k).not.toEqual(r.k);
    expect(() => recallSequence({ facts: 1000 })).toThrow(/recall.facts: got 1000/);
    expect(() => recallSequence({ seqLen: 3 })).toThrow(/recall.seqLen: got 3/);
  });
});

describe('yardsticks', () => {
  it('the softmax cache reads what @ovq/baselines softmaxAttention reads at the last token', () => {
    const rng = createRng(5);
    const T = 50;
    const dk = 6;
    const dv = 5;
    const rand = (n: number) => Float32Array.from({ length: n }, () => rng() * 2 - 1);
    const seq = {
      q: rand(T * dk),
      k: rand(T * dk),
      v: rand(T * dv),
      seqLen: T,
      keyDim: dk,
      valueDim: dv,
    };
    const cache = new KvCache(dk, dv, 3, true);
    cache.append({
      ...seq,
      seqLen: 20,
      k: seq.k.subarray(0, 20 * dk),
      v: seq.v.subarray(0, 20 * dv),
    });
    cache.append({ ...seq, seqLen: 30, k: seq.k.subarray(20 * dk), v: seq.v.subarray(20 * dv) });
    const ref = softmaxAttention(seq, { beta: 3, normalize: true }).output;
    assertClose(
      'cache read',
      ref.subarray((T - 1) * dv),
      cache.read(seq.q.subarray((T - 1) * dk)),
      1e-12,
    );
  });

  it('KVM gets OVQ’s row budget and a window of C; the zero-value probe leaves the direction', () => {
    expect(matchedKvmConfig({ capacity: 32, chunkSize: 16, beta: 4 })).toEqual({
      window: 16,
      blockSize: 16,
      beta: 4,
      budget: { kind: 'saturating', rows: 32 },
    });
    expect(
      matchedKvmConfig({ capacity: 32, chunkSize: 16, beta: 4, growth: 'fixed' }).budget,
    ).toEqual({ kind: 'fixed', rows: 32 });
    // Reading a state by a one-token forward with v = 0 gives a multiple of the read without the
    // probe token: same direction as the probe with its real value's contribution removed.
    const input = recallSequence({ seqLen: 256, facts: 8 });
    const yard = new Yardsticks(input, { capacity: 16, chunkSize: 32, beta: 8 });
    yard.append(input, input);
    const key = input.facts?.keys.subarray(0, KEY_DIM) as Float32Array;
    const zero = new Float32Array(KEY_DIM);
    const probe = { q: key, k: key, v: zero, seqLen: 1, keyDim: KEY_DIM, valueDim: KEY_DIM };
    const one = kvmAttention(probe, undefined, yard.kvm).output;
    const two = kvmAttention(
      {
        ...probe,
        seqLen: 2,
        q: Float32Array.of(...key, ...key),
        k: Float32Array.of(...key, ...key),
        v: new Float32Array(2 * KEY_DIM),
      },
      undefined,
      yard.kvm,
    ).output;
    expect(Math.hypot(...one)).toBeGreaterThan(0);
    // A second zero-value token rescales the output and keeps its direction.
    const cos =
      one.reduce((s, x, d) => s + x * two[KEY_DIM + d], 0) /
      (Math.hypot(...one) * Math.hypot(...two.subarray(KEY_DIM)));
    expect(cos).toBeCloseTo(1, 10);
  });

  it('memory: OVQ N·(dk+dv+1) + C·(dk+dv) against a KV cache T·(dk+dv)', () => {
    const m = memoryNumbers({ keyDim: 16, valueDim: 16 }, 100, 64, 5000);
    expect(m.ovq).toBe(100 * 33 + 64 * 32);
    expect(m.kvCache).toBe(softmaxStateSize({ keyDim: 16, valueDim: 16 }, {}, 5000));
    expect(m.kvCache).toBe(5000 * 32);
  });
});

describe('a run on the CPU path (engine/run.ts) outside the browser', () => {
  it('streams in pieces, equals @ovq/core’s reference, and frames come as it goes', async () => {
    const input = recallSequence({ seqLen: 1024, facts: 16 });
    const config = { capacity: 48, chunkSize: 32, beta: 8 };
    const frames: number[] = [];
    const { summary, output } = await runOvq(input, config, 'cpu', noGpu, (f) =>
      frames.push(f.tokens),
    );
    const ref = ovqAttentionReference(input, config);
    assertClose('output', ref.output, output, 1e-4);
    expect(summary.size).toBe(ref.state.size);
    expect(summary.counts).toEqual(Array.from(ref.state.counts));
    expect(frames.at(-1)).toBe(1024);
    expect(frames[0]).toBeLessThan(1024);
    const yard = new Yardsticks(input, config);
    yard.append(input, input);
    const r = probeFacts(input.facts as NonNullable<typeof input.facts>, 1024, ref.state, yard);
    expect(summary.recall?.seen).toBe(16);
    expect(summary.recall?.softmax).toEqual(r.softmax.flatMap((f, i) => (f ? [i] : [])));
    expect(summary.recall?.kvm).toEqual(r.kvm.flatMap((f, i) => (f ? [i] : [])));
    await expect(runOvq(input, { ...config, beta: -1 }, 'cpu', noGpu, () => {})).rejects.toThrow(
      /beta/,
    );
    await expect(runOvq(input, config, 'webgpu', noGpu, () => {})).rejects.toThrow(
      /backend: WebGPU/,
    );
  });
});

describe('fmt (the page’s number format, without Intl)', () => {
  it('matches en-US toLocaleString', () => {
    for (const x of [0, 7, 999, 1000, 65536, 1234567.891, -1234.5, -0.001, 0.25, 12.345, 1e9]) {
      for (const digits of [0, 1, 2]) {
        const want = x.toLocaleString('en-US', {
          maximumFractionDigits: digits,
          minimumFractionDigits: digits,
        });
        expect(fmt(x, digits), `${x}, ${digits}`).toBe(want);
      }
    }
  });
});
