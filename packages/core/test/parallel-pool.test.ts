// The worker pool: batched forward and backward give the same bytes for 1, 2 and 3 workers and
// without a pool (per-head β included), also when workers reuse their workspaces across calls of
// other shapes; inputs already in SharedArrayBuffers work in place; non-finite inputs found by
// the workers give the no-pool error with nothing written; bad pools, failing and dying workers
// give clear errors instead of hanging.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type BatchedSeq,
  ovqAttention,
  ovqAttentionBackward,
  ovqAttentionBatched,
  ovqAttentionBatchedBackward,
} from '../src/chunked/index.js';
import { ovqAppend } from '../src/ovq/reference.js';
import { serializeOvqState } from '../src/ovq/serialize.js';
import { OvqState, setOvqCapacity } from '../src/ovq/state.js';
import { createOvqWorkerPool, type OvqWorkerPool } from '../src/parallel/index.js';
import { injectFault } from '../src/parallel/pool.js';
import { createRng, poisoned, randn } from '../src/testing/index.js';
import { OvqInputError } from '../src/validate.js';
import { setOvqKernels } from '../src/wasm/simd.js';
import { expectSameState } from './chunked-support.js';

function randomBatch(seed: number, batch: number, heads: number, T: number, d: number): BatchedSeq {
  const rng = createRng(seed);
  const n = batch * heads * T * d;
  return {
    q: Float32Array.from(randn(rng, n)),
    k: Float32Array.from(randn(rng, n)),
    v: Float32Array.from(randn(rng, n)),
    batch,
    heads,
    seqLen: T,
    keyDim: d,
    valueDim: d,
  };
}

const bytesOf = (x: Float32Array | Float64Array) =>
  Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');

let pools: OvqWorkerPool[] = [];

// One pool first: from sources, its worker fills the transpile cache that the others then read.
beforeAll(async () => {
  pools = [await createOvqWorkerPool({ threads: 1 })];
  pools.push(...(await Promise.all([2, 3].map((threads) => createOvqWorkerPool({ threads })))));
}, 60_000);

afterAll(async () => {
  await Promise.all(pools.map((p) => p.dispose()));
});

describe('createOvqWorkerPool', () => {
  const x = randomBatch(5, 2, 3, 150, 8);
  const beta = Float32Array.from([2.5, 4, 6]);
  const cases = [
    ['shared β', { chunkSize: 16, capacity: 20, beta: 3 }],
    ['per-head β [heads]', { chunkSize: 16, capacity: 20, beta }],
    [
      'per-entry β [batch·heads], ema gaussian random',
      {
        chunkSize: 8,
        capacity: 12,
        beta: Float32Array.from([1, 2, 3, 4, 5, 6]),
        read: 'gaussian',
        update: { kind: 'ema', rate: 0.4 },
        spawn: 'random',
        seed: 3,
      },
    ],
  ] as const;

  for (const [name, config] of cases) {
    it(`forward and backward are the same bytes for no pool and 1, 2, 3 workers (${name})`, () => {
      const dOutput = Float32Array.from(randn(createRng(9), 6 * 150 * 8));
      const ref = ovqAttentionBatched(x, config);
      const refGrad = ovqAttentionBatchedBackward(x, config, dOutput);
      for (const pool of pools) {
        const out = poisoned(6 * 150 * 8);
        const got = ovqAttentionBatched(x, config, { pool, out });
        expect(got.output).toBe(out);
        expect(bytesOf(got.output), `threads ${pool.threads}`).toBe(bytesOf(ref.output));
        expect(got.traces).toEqual(ref.traces);
        for (let h = 0; h < 6; h++) expectSameState(`head ${h}`, ref.states[h], got.states[h], 0);
        const g = ovqAttentionBatchedBackward(x, config, dOutput, {
          pool,
          out: { dq: poisoned(6 * 1200), dk: poisoned(6 * 1200), dv: poisoned(6 * 1200) },
        });
        for (const key of ['dq', 'dk', 'dv', 'dbetaPerHead', 'dbetaConfig'] as const) {
          expect(bytesOf(g[key]), `${key}, threads ${pool.threads}`).toBe(bytesOf(refGrad[key]));
        }
        expect(g.dbeta).toBe(refGrad.dbeta);
        expect(g.traces).toEqual(refGrad.traces);
      }
    });
  }

  it("workers follow the caller's kernel choice (setOvqKernels)", () => {
    const config = { chunkSize: 16, capacity: 20, beta: 2 };
    try {
      setOvqKernels('js');
      const js = ovqAttentionBatched(x, config);
      expect(bytesOf(ovqAttentionBatched(x, config, { pool: pools[1] }).output)).toBe(
        bytesOf(js.output),
      );
      setOvqKernels('wasm');
      const wasm = ovqAttentionBatched(x, config);
      expect(bytesOf(wasm.output)).not.toBe(bytesOf(js.output));
      expect(bytesOf(ovqAttentionBatched(x, config, { pool: pools[1] }).output)).toBe(
        bytesOf(wasm.output),
      );
    } finally {
      setOvqKernels('auto');
    }
  });

  it('per-head β equals one-head calls with that β; dbetaConfig sums over the batch', () => {
    const config = { chunkSize: 16, capacity: 20, beta };
    const dOutput = Float32Array.from(randn(createRng(4), 6 * 150 * 8));
    const got = ovqAttentionBatched(x, config, { pool: pools[1] });
    const g = ovqAttentionBatchedBackward(x, config, dOutput, { pool: pools[1] });
    const expected = new Float64Array(3);
    for (let bh = 0; bh < 6; bh++) {
      const part = (a: Float32Array | Float64Array) => a.slice(bh * 1200, (bh + 1) * 1200);
      const seq = { q: part(x.q), k: part(x.k), v: part(x.v), seqLen: 150, keyDim: 8, valueDim: 8 };
      const one = { chunkSize: 16, capacity: 20, beta: beta[bh % 3] };
      const o = ovqAttention(seq, one);
      expect(bytesOf(got.output.subarray(bh * 1200, (bh + 1) * 1200))).toBe(bytesOf(o.output));
      const og = ovqAttentionBackward(seq, one, dOutput.subarray(bh * 1200, (bh + 1) * 1200));
      expect(g.dbetaPerHead[bh]).toBe(og.dbeta);
      expect(bytesOf(g.dq.subarray(bh * 1200, (bh + 1) * 1200))).toBe(bytesOf(og.dq));
      expected[bh % 3] += og.dbeta;
    }
    expect(Array.from(g.dbetaConfig)).toEqual(Array.from(expected));
  });

  it('continues per-head states on the pool', () => {
    const config = { chunkSize: 16, capacity: 20, beta };
    const first = ovqAttentionBatched(x, config);
    const a = ovqAttentionBatched(x, config, { states: first.states });
    const b = ovqAttentionBatched(x, config, { states: first.states, pool: pools[2] });
    expect(bytesOf(b.output)).toBe(bytesOf(a.output));
    for (let h = 0; h < 6; h++) expectSameState(`head ${h}`, a.states[h], b.states[h], 0);
  });

  it('works on SharedArrayBuffer-backed inputs and outputs in place', () => {
    const config = { chunkSize: 16, capacity: 20, beta: 2 };
    const share = (a: Float32Array | Float64Array) => {
      const s = new Float32Array(new SharedArrayBuffer(a.length * 4));
      s.set(a);
      return s;
    };
    const xs = { ...x, q: share(x.q), k: share(x.k), v: share(x.v) };
    const out = share(poisoned(6 * 1200));
    const got = ovqAttentionBatched(xs, config, { pool: pools[1], out });
    expect(got.output).toBe(out);
    expect(bytesOf(out)).toBe(bytesOf(ovqAttentionBatched(x, config).output));
  });

  it('rejects bad β, a fake pool and a disposed pool, naming the argument', async () => {
    const config = { chunkSize: 16, capacity: 20, beta: 2 };
    expect(() =>
      ovqAttentionBatched(x, { ...config, beta: Float32Array.from([1, 2]) }, { pool: pools[0] }),
    ).toThrow(/config.beta: has 2 values; expected a number or a Float32Array of heads = 3/);
    expect(() => ovqAttentionBatched(x, { ...config, beta: Float32Array.from([1, 0, 2]) })).toThrow(
      /config.beta: value at index 1 is 0/,
    );
    const fake = { threads: 2, disposed: false, dispose: async () => {} };
    expect(() => ovqAttentionBatched(x, config, { pool: fake })).toThrow(OvqInputError);
    expect(() =>
      ovqAttentionBatchedBackward(x, config, new Float32Array(7200), { pool: fake }),
    ).toThrow(/options.pool: expected a pool made by createOvqWorkerPool of this copy/);
    // A real pool from another copy of the module (as from another realm or package copy).
    vi.resetModules();
    const other = await import('../src/parallel/pool.js');
    const foreign = await other.createOvqWorkerPool({ threads: 1 });
    try {
      expect(() => ovqAttentionBatched(x, config, { pool: foreign })).toThrow(
        /options.pool: expected a pool made by createOvqWorkerPool of this copy/,
      );
    } finally {
      await foreign.dispose();
    }
    const pool = await createOvqWorkerPool({ threads: 1 });
    await pool.dispose();
    expect(pool.disposed).toBe(true);
    expect(() => ovqAttentionBatched(x, config, { pool })).toThrow(
      /options.pool: the pool is disposed/,
    );
    await expect(createOvqWorkerPool({ threads: 0 })).rejects.toThrow(
      /options.threads: got 0; expected a positive integer/,
    );
  });

  it('workers reuse workspaces across calls of other shapes: large, small, other dims, large again', async () => {
    // A fresh pool, so that its workers' cached workspaces start from this sequence of calls.
    const pool = await createOvqWorkerPool({ threads: 2 });
    try {
      const big = randomBatch(21, 2, 2, 200, 8);
      const small = randomBatch(22, 1, 3, 70, 8);
      const other = randomBatch(23, 1, 2, 90, 5);
      const cBig = { chunkSize: 16, capacity: 40, beta: Float32Array.from([2, 5]) };
      const cSmall = { chunkSize: 16, capacity: 8, beta: 3 };
      const cOther = {
        chunkSize: 8,
        capacity: 12,
        beta: 4,
        update: { kind: 'ema' as const, rate: 0.3 },
      };
      const steps = [
        [big, cBig],
        [small, cSmall],
        [other, cOther],
        [big, cBig],
        [small, cSmall],
      ] as const;
      for (const [i, [x, config]] of steps.entries()) {
        const n = x.batch * x.heads * x.seqLen * x.valueDim;
        const ref = ovqAttentionBatched(x, config);
        const out = poisoned(n);
        const got = ovqAttentionBatched(x, config, { pool, out });
        expect(bytesOf(out), `step ${i}: output`).toBe(bytesOf(ref.output));
        expect(got.traces, `step ${i}: traces`).toEqual(ref.traces);
        for (let h = 0; h < ref.states.length; h++) {
          expect(got.states[h]).toBeInstanceOf(OvqState);
          expect(got.states[h].config, `step ${i}: head ${h} config`).toEqual(ref.states[h].config);
          const a = Buffer.from(serializeOvqState(got.states[h])).toString('base64');
          const b = Buffer.from(serializeOvqState(ref.states[h])).toString('base64');
          expect(a, `step ${i}: head ${h} state bytes`).toBe(b);
        }
        // Continuing the states (rows and pending tokens travel to the workers) and the backward
        // share the cached workspace with the forward.
        const next = ovqAttentionBatched(x, config, { pool, states: got.states });
        const nextRef = ovqAttentionBatched(x, config, { states: ref.states });
        expect(bytesOf(next.output), `step ${i}: continued output`).toBe(bytesOf(nextRef.output));
        const dOutput = Float32Array.from(randn(createRng(30 + i), n));
        const nk = x.batch * x.heads * x.seqLen * x.keyDim;
        const g = ovqAttentionBatchedBackward(x, config, dOutput, {
          pool,
          out: { dq: poisoned(nk), dk: poisoned(nk), dv: poisoned(n) },
        });
        const gRef = ovqAttentionBatchedBackward(x, config, dOutput);
        for (const key of ['dq', 'dk', 'dv', 'dbetaPerHead'] as const) {
          expect(bytesOf(g[key]), `step ${i}: ${key}`).toBe(bytesOf(gRef[key]));
        }
      }
    } finally {
      await pool.dispose();
    }
  }, 60_000);

  it('pool states are ordinary read-only states: unshared copies out, and they continue like no-pool states', () => {
    const config = { chunkSize: 16, capacity: 20, beta };
    const ref = ovqAttentionBatched(x, config);
    const got = ovqAttentionBatched(x, config, { pool: pools[1] });
    for (let h = 0; h < 6; h++) {
      const a = got.states[h];
      expect(a.centroidKeys.buffer).toBeInstanceOf(ArrayBuffer);
      expect(a.counts.buffer).toBeInstanceOf(ArrayBuffer);
      // A copy: writing to it leaves the state as it was.
      const keys = a.centroidKeys;
      keys[0] += 1;
      expect(a.centroidKeys[0]).toBe(ref.states[h].centroidKeys[0]);
      // Continued by the reference (which grows the rows) and by the chunked path.
      const seq = {
        q: x.q.slice(h * 1200, (h + 1) * 1200),
        k: x.k.slice(h * 1200, (h + 1) * 1200),
        v: x.v.slice(h * 1200, (h + 1) * 1200),
        seqLen: 150,
      };
      const one = { chunkSize: 16, capacity: 40, beta: beta[h % 3] };
      const initial = (s: OvqState) => {
        const c = s.clone();
        setOvqCapacity(c, 40);
        return c;
      };
      const chunked = ovqAttention({ ...seq, keyDim: 8, valueDim: 8 }, one, {
        initialState: initial(a),
      });
      const chunkedRef = ovqAttention({ ...seq, keyDim: 8, valueDim: 8 }, one, {
        initialState: initial(ref.states[h]),
      });
      expect(bytesOf(chunked.output)).toBe(bytesOf(chunkedRef.output));
      const sa = initial(a);
      const sb = initial(ref.states[h]);
      expect(bytesOf(ovqAppend(sa, seq))).toBe(bytesOf(ovqAppend(sb, seq)));
      expect(Buffer.from(serializeOvqState(sa)).toString('base64')).toBe(
        Buffer.from(serializeOvqState(sb)).toString('base64'),
      );
    }
  });

  it('a non-finite input found by the workers gives the no-pool error, with nothing written', () => {
    const config = { chunkSize: 16, capacity: 20, beta: 2 };
    const pool = pools[1];
    const n = 6 * 1200;
    for (const [name, at, value] of [
      ['q', 4 * 1200 + 77, Number.NaN],
      ['v', 5 * 1200 + 1199, Number.POSITIVE_INFINITY],
      ['k', 3, Number.NEGATIVE_INFINITY],
    ] as const) {
      const bad = { ...x, [name]: x[name].slice() };
      bad[name][at] = value;
      const expected = new RegExp(`input\\.${name}: value at index ${at} is ${value}`);
      expect(() => ovqAttentionBatched(bad, config)).toThrow(expected);
      const out = new Float32Array(n).fill(7);
      expect(() => ovqAttentionBatched(bad, config, { pool, out })).toThrow(OvqInputError);
      expect(() => ovqAttentionBatched(bad, config, { pool, out })).toThrow(expected);
      expect(out.every((y) => y === 7)).toBe(true);
    }
    const dOutput = Float32Array.from(randn(createRng(8), n));
    dOutput[2 * 1200 + 5] = Number.NaN;
    const dq = new Float32Array(n).fill(7);
    expect(() => ovqAttentionBatchedBackward(x, config, dOutput, { pool, out: { dq } })).toThrow(
      /dOutput: value at index 2405 is NaN/,
    );
    expect(dq.every((y) => y === 7)).toBe(true);
    // The pool stays usable.
    const again = ovqAttentionBatched(x, config, { pool });
    expect(bytesOf(again.output)).toBe(bytesOf(ovqAttentionBatched(x, config).output));
  });

  it('a worker that throws fails the call with its error, and the pool stays usable', () => {
    const config = { chunkSize: 16, capacity: 20, beta: 2 };
    const pool = pools[1];
    injectFault(pool, 'throw');
    expect(() => ovqAttentionBatched(x, config, { pool })).toThrow(
      /@ovq\/core worker pool: worker \d failed on head 0: Error: injected fault/,
    );
    expect(pool.disposed).toBe(false);
    const again = ovqAttentionBatched(x, config, { pool });
    expect(bytesOf(again.output)).toBe(bytesOf(ovqAttentionBatched(x, config).output));
  });

  it('an undisposed pool does not keep Node alive (the process exits on its own)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-pool-exit-'));
    const script = join(dir, 'exit.mjs');
    const pool = new URL('../src/parallel/pool.ts', import.meta.url).href;
    writeFileSync(
      script,
      `const { createOvqWorkerPool } = await import(${JSON.stringify(pool)});\n` +
        'const pool = await createOvqWorkerPool({ threads: 2 });\n' +
        "console.log('started', pool.threads);\n",
    );
    const loader = new URL('../src/parallel/source-loader.mjs', import.meta.url).href;
    const text = execFileSync(process.execPath, ['--import', loader, script], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(text.trim()).toBe('started 2');
  }, 90_000);

  it('a worker that dies fails the call (no hang) and the pool refuses later calls', async () => {
    const config = { chunkSize: 16, capacity: 20, beta: 2 };
    const pool = await createOvqWorkerPool({ threads: 2 });
    injectFault(pool, 'exit');
    expect(() => ovqAttentionBatched(x, config, { pool })).toThrow(
      /worker \d exited with code 3 during the call/,
    );
    expect(pool.disposed).toBe(true);
    expect(() => ovqAttentionBatched(x, config, { pool })).toThrow(
      /options.pool: the pool is unusable \(worker \d exited with code 3 during the call\)/,
    );
    await pool.dispose();
  });
});
