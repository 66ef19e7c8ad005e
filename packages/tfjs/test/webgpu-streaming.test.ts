// OvqAttention.stepAsync on the webgpu backend streams on the GPU (@ovq/webgpu's GpuOvqState):
// token by token and in pieces it equals the layer's full forward and a float64 reference built
// from the layer's weights and @ovq/core (outputs and final dictionaries), with NaN-poisoned
// kernel outputs; and a step reads nothing back to the host (every GPU map is counted).
import { type OvqState, ovqAttentionReference } from '@ovq/core';
import { assertClose, createRng } from '@ovq/core/testing';
import { GpuContext } from '@ovq/webgpu';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { OvqAttention, type OvqAttentionArgs } from '../src/index.js';
import { setContextFor, type WebGpuBackendLike } from '../src/kernels/webgpu-bridge.js';
import type { MixerStreamState } from '../src/streaming/state.js';
import { randomTensor, tf } from './backends.js';
import { webGpuOrSkip } from './webgpu-setup.js';

const reason = await webGpuOrSkip();

const [B, T, D, H, dk, dv] = [2, 21, 12, 2, 4, 5];

/** x [B, T, D] · W [D, H·w] → per [b, h] rows [T, w] (float64). */
function project(x: Float64Array, w: Float64Array, width: number): Float64Array[] {
  const out = Array.from({ length: B * H }, () => new Float64Array(T * width));
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < H * width; j++) {
        let s = 0;
        for (let i = 0; i < D; i++) s += x[(b * T + t) * D + i] * w[i * H * width + j];
        const h = Math.floor(j / width);
        out[b * H + h][t * width + (j % width)] = s;
      }
    }
  }
  return out;
}

/** The layer in float64 from its weights: projections, @ovq/core per head, gate, Wo. */
async function reference(
  layer: OvqAttention,
  x: tf.Tensor,
  config: Omit<OvqAttentionArgs, 'heads' | 'keyDim' | 'valueDim'> & {
    chunkSize: number;
    capacity: number;
  },
): Promise<{ output: Float64Array; states: OvqState[] }> {
  const xs = Float64Array.from(await x.data());
  const w = new Map<string, Float64Array>();
  for (const v of layer.weights) {
    const name = v.originalName.split('/').pop() as string;
    w.set(name, Float64Array.from(await v.read().data()));
  }
  const get = (n: string) => w.get(n) as Float64Array;
  const q = project(xs, get('wq'), dk);
  const k = project(xs, get('wk'), dk);
  const v = project(xs, get('wv'), dv);
  const logBeta = get('log_beta');
  const { chunkSize, capacity, growth, spawn, read, update, normalize, spawnSeed } = config;
  const states: OvqState[] = [];
  const mixed = new Float64Array(B * T * H * dv); // [B, T, H·dv]
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const bh = b * H + h;
      const r = ovqAttentionReference(
        { q: q[bh], k: k[bh], v: v[bh], seqLen: T, keyDim: dk, valueDim: dv },
        {
          chunkSize,
          capacity,
          growth,
          spawn,
          read,
          update,
          normalize,
          seed: spawnSeed,
          beta: Math.exp(logBeta[h]),
        },
      );
      states.push(r.state);
      for (let t = 0; t < T; t++)
        for (let i = 0; i < dv; i++)
          mixed[(b * T + t) * H * dv + h * dv + i] = r.output[t * dv + i];
    }
  }
  if (w.has('wg')) {
    const g = get('wg');
    for (let r = 0; r < B * T; r++) {
      for (let j = 0; j < H * dv; j++) {
        let s = 0;
        for (let i = 0; i < D; i++) s += xs[r * D + i] * g[i * H * dv + j];
        mixed[r * H * dv + j] *= 1 / (1 + Math.exp(-s));
      }
    }
  }
  const wo = get('wo');
  const output = new Float64Array(B * T * D);
  for (let r = 0; r < B * T; r++) {
    for (let j = 0; j < D; j++) {
      let s = 0;
      for (let i = 0; i < H * dv; i++) s += mixed[r * H * dv + i] * wo[i * D + j];
      output[r * D + j] = s;
    }
  }
  return { output, states };
}

/** Streams x through `state` in pieces of the given lengths (summing to T). */
async function stream(
  layer: OvqAttention,
  x: tf.Tensor,
  state: MixerStreamState<OvqState>,
  pieces: number[],
): Promise<Float32Array> {
  const outs: tf.Tensor[] = [];
  let at = 0;
  for (const n of pieces) {
    const piece = tf.slice(x, [0, at, 0], [B, n, D]);
    outs.push(await layer.stepAsync(piece, state));
    piece.dispose();
    at += n;
  }
  const all = tf.concat(outs, 1);
  const values = (await all.data()) as Float32Array;
  tf.dispose([all, ...outs]);
  return values;
}

function compareStates(label: string, ref: OvqState[], got: OvqState[]): void {
  expect(got.length).toBe(ref.length);
  ref.forEach((r, i) => {
    const g = got[i];
    expect([g.size, g.tokensSeen, g.pendingCount], `${label} head ${i}: sizes`).toEqual([
      r.size,
      r.tokensSeen,
      r.pendingCount,
    ]);
    // Equal counts: every absorb sent the same tokens to the same rows.
    expect(Array.from(g.counts), `${label} head ${i}: counts`).toEqual(Array.from(r.counts));
    assertClose(`${label} head ${i}: centroid keys`, r.centroidKeys, g.centroidKeys, 1e-5);
    assertClose(`${label} head ${i}: centroid values`, r.centroidValues, g.centroidValues, 1e-5);
    assertClose(`${label} head ${i}: pending keys`, r.pendingKeys, g.pendingKeys, 1e-5);
    assertClose(`${label} head ${i}: pending values`, r.pendingValues, g.pendingValues, 1e-5);
  });
}

describe.skipIf(reason !== null)('OvqAttention.stepAsync streams on the GPU (webgpu)', () => {
  let ctx: GpuContext;

  beforeAll(async () => {
    await tf.setBackend('webgpu');
    // Every output the streaming kernels write starts as NaN: a skipped token fails the compare.
    ctx = new GpuContext((tf.backend() as unknown as WebGpuBackendLike).device, {
      poisonOutputs: true,
    });
    setContextFor(ctx);
  });

  afterAll(() => {
    vi.restoreAllMocks();
  });

  const configs = [
    ['dot read, default options', {}],
    [
      'gaussian read, random spawn, log growth, output gate',
      { read: 'gaussian', spawn: 'random', growth: { kind: 'log', alpha: 3 }, spawnSeed: 5 },
    ],
    [
      'ema update, no normalisation, first spawn, fixed growth',
      { update: { kind: 'ema', rate: 0.3 }, normalize: false, spawn: 'first', growth: 'fixed' },
    ],
  ] as const;

  for (const [name, extra] of configs) {
    it(`${name}: token by token and in pieces equals the full forward and float64 @ovq/core (outputs, dictionaries)`, async () => {
      const config = { chunkSize: 4, capacity: 6, ...extra } as const;
      const layer = new OvqAttention({
        heads: H,
        keyDim: dk,
        valueDim: dv,
        betaInit: 2.5,
        outputGate: name.includes('gate'),
        seed: 3,
        ...config,
      });
      const x = randomTensor(createRng(11), [B, T, D]);
      const full = layer.apply(x) as tf.Tensor;
      // Distinct β per head, so a head mix-up in the folding would show.
      const logBeta = layer.weights.find((w) => w.originalName.endsWith('log_beta'));
      logBeta?.write(tf.tensor([Math.log(0.8), Math.log(3.1)]));
      full.dispose();
      const forward = (await (layer.apply(x) as tf.Tensor).data()) as Float32Array;
      const ref = await reference(layer, x, config);
      assertClose(`${name}: full forward vs float64`, ref.output, forward, 1e-4);

      for (const pieces of [Array(T).fill(1), [7, 1, 4, 9]]) {
        const label = `${name}, pieces ${pieces.length === T ? '1×T' : pieces.join('+')}`;
        const state = layer.createState(B);
        const streamed = await stream(layer, x, state, pieces);
        assertClose(`${label}: stepAsync vs float64`, ref.output, streamed, 1e-4);
        assertClose(`${label}: stepAsync vs full forward`, forward, streamed, 1e-4);
        expect(() => layer.dictionaryHealth(state)).toThrow(/lives on the GPU/);
        await layer.moveStateToHost(state);
        compareStates(label, ref.states, state.perHead);
        expect(layer.dictionaryHealth(state)[0].size).toBe(ref.states[0].size);
      }
      x.dispose();
    });
  }

  it('a GPU step reads nothing back (every GPU buffer map and backend read counted); the host path does, and the counters see it', async () => {
    const layer = new OvqAttention({ heads: H, keyDim: dk, valueDim: dv, chunkSize: 4, seed: 1 });
    const x = randomTensor(createRng(2), [B, T, D]);
    (layer.apply(x) as tf.Tensor).dispose();
    const backend = tf.backend() as unknown as {
      read: (...a: unknown[]) => unknown;
      readSync: (...a: unknown[]) => unknown;
      device: GPUDevice;
    };
    const probe = backend.device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ });
    const bufferProto = Object.getPrototypeOf(probe) as { mapAsync: GPUBuffer['mapAsync'] };
    probe.destroy();
    const maps = vi.spyOn(bufferProto, 'mapAsync');
    const reads = vi.spyOn(backend, 'read');
    const readSyncs = vi.spyOn(backend, 'readSync');
    const total = () =>
      maps.mock.calls.length + reads.mock.calls.length + readSyncs.mock.calls.length;

    const settle = async () => {
      await ctx.device.queue.onSubmittedWorkDone();
      await new Promise((r) => setTimeout(r, 0));
    };
    await settle();
    const state = layer.createState(B);
    const tensorsBefore = tf.memory().numTensors;
    const liveBefore = ctx.liveTensors;
    const outs: tf.Tensor[] = [];
    const start = total();
    for (let t = 0; t < T; t++) {
      const piece = tf.slice(x, [0, t, 0], [B, 1, D]);
      outs.push(await layer.stepAsync(piece, state));
      piece.dispose();
    }
    expect(total() - start, 'GPU maps or backend reads during GPU stepAsync').toBe(0);
    // Outputs are the only tensors a step leaves.
    expect(tf.memory().numTensors).toBe(tensorsBefore + T);
    expect(ctx.liveTensors, 'the GPU state holds buffers').toBeGreaterThan(liveBefore);

    // The counters are live: reading an output maps a buffer.
    const beforeRead = total();
    await outs[T - 1].data();
    expect(total(), 'reading an output must be counted').toBeGreaterThan(beforeRead);

    // The host route (a state brought back to the host keeps streaming there) reads q, k, v.
    await layer.moveStateToHost(state);
    const beforeHost = total();
    const piece = tf.slice(x, [0, 0, 0], [B, 1, D]);
    const host = await layer.stepAsync(piece, state);
    expect(total(), 'host stepAsync reads projections back').toBeGreaterThan(beforeHost);
    tf.dispose([piece, host, x, ...outs]);
    maps.mockRestore();
    reads.mockRestore();
    readSyncs.mockRestore();

    // disposeState frees the GPU state's buffers.
    const other = layer.createState(B);
    const y = tf.slice(randomTensor(createRng(4), [B, T, D]), [0, 0, 0], [B, 5, D]);
    (await layer.stepAsync(y, other)).dispose();
    layer.disposeState(other);
    await settle();
    expect(ctx.liveTensors).toBe(liveBefore);
    y.dispose();
  });

  it('a GPU state refuses step (sync), and a gaussian stream refuses a changed β, naming what to do', async () => {
    const layer = new OvqAttention({ heads: H, keyDim: dk, read: 'gaussian', chunkSize: 4 });
    const x = randomTensor(createRng(5), [B, 6, D]);
    (layer.apply(x) as tf.Tensor).dispose();
    const state = layer.createState(B);
    (await layer.stepAsync(x, state)).dispose();
    expect(() => layer.step(x, state)).toThrow(/OvqAttention\.step: state.*lives on the GPU/);
    const logBeta = layer.weights.find((w) => w.originalName.endsWith('log_beta'));
    logBeta?.write(tf.tensor([0.1, 0.2]));
    await expect(layer.stepAsync(x, state)).rejects.toThrow(/log_beta was assigned/);
    layer.disposeState(state);
    x.dispose();
  });
});
