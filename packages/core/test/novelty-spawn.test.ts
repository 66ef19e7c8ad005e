// Novelty spawn (`spawnDistance`, an extension of ALGORITHM.md §4.3): after the growth schedule's
// spawns, a pending token farther than λ from every row seeds one, up to the capacity. The
// chunked path is compared with the reference for every option in chunked-support's OPTION_CASES
// (two novelty cases there); this file pins what the option means and that it is not vacuous.
import { describe, expect, it } from 'vitest';
import { ovqAttention, ovqAttentionBackward } from '../src/chunked/index.js';
import {
  createOvqState,
  deserializeOvqState,
  growthTarget,
  OvqInputError,
  ovqAppend,
  ovqAttentionReference,
  serializeOvqState,
  setOvqKernels,
  spawnCount,
} from '../src/index.js';
import { ovqAttentionReferenceBackward } from '../src/ovq/backward.js';
import { normalizeRow } from '../src/ovq/read.js';
import type { OvqConfig, OvqTrace, Seq } from '../src/ovq/types.js';
import {
  assertClose,
  centralDifferences,
  createRng,
  dot,
  poisoned,
  randn,
  randomSeq,
} from '../src/testing/index.js';
import { resolveOvqConfig } from '../src/validate.js';
import { verifyDecisions } from './decisions-support.js';

/** Absorbs whose spawns exceed the growth schedule's (novelty spawns), replayed from a trace. */
function noveltySpawns(config: OvqConfig, trace: OvqTrace): number {
  const cfg = resolveOvqConfig(config);
  let extra = 0;
  trace.forEach((r, a) => {
    const tau = (a + 1) * cfg.chunkSize;
    extra +=
      r.spawned.length - spawnCount(cfg.growth, cfg.capacity, tau, r.sizeBefore, cfg.chunkSize);
  });
  return extra;
}

/**
 * A haystack of 8-dimensional keys near two directions with far-off needle spans: `needles` as
 * [start, length, axis] put `length` keys along axis `axis` (2–7) from `start`. The default, one
 * key at `needleAt` along axis 5, is written after the saturating schedule has stopped spawning
 * (capacity 5: ⌊5τ/(5+τ)⌋ = 4 rows from τ = 20 on).
 */
function haystack(
  T: number,
  needleAt: number,
  needles: [number, number, number][] = [[needleAt, 1, 5]],
  seeds = [4, 3],
): Seq {
  const d = 8;
  const rng = createRng(seeds[1]);
  const seq = randomSeq(seeds[0], T, d, 3);
  for (let t = 0; t < T; t++) {
    const noise = randn(rng, d);
    for (let i = 0; i < d; i++) seq.k[t * d + i] = (i === t % 2 ? 1 : 0) + 0.05 * noise[i];
  }
  for (const [start, length, axis] of needles)
    for (let t = start; t < start + length; t++)
      for (let i = 0; i < d; i++) seq.k[t * d + i] = i === axis ? 1 : 0;
  return seq;
}

describe('novelty spawn: what it does', () => {
  const T = 400;
  const needleAt = 250;
  const seq = haystack(T, needleAt);
  const base = { chunkSize: 10, capacity: 5, beta: 4 };
  const rowOfNeedle = (config: OvqConfig) => {
    const { state, trace } = ovqAttentionReference(seq, config);
    const record = trace[Math.floor(needleAt / 10)];
    const j = needleAt % 10;
    const row = record.assignment[j];
    return { state, row, seeded: record.spawned.includes(j) };
  };
  it('a far-off token after the schedule has stopped seeds a row of its own, which filler does not join', () => {
    const { state, row, seeded } = rowOfNeedle({ ...base, spawnDistance: 1 });
    expect(seeded).toBe(true);
    expect(state.size).toBe(5);
    expect(state.counts[row]).toBe(1);
    const own = new Float64Array(8);
    normalizeRow(seq.k, needleAt * 8, 8, own, 0);
    expect(Array.from(state.centroidKeys.subarray(row * 8, row * 8 + 8))).toEqual(Array.from(own));
  });
  it('without it the same token is averaged into a filler row', () => {
    const { state, row, seeded } = rowOfNeedle(base);
    expect(seeded).toBe(false);
    expect(state.size).toBe(4);
    expect(state.counts[row]).toBeGreaterThan(10);
  });
  it('never more rows than the capacity, and a λ beyond every distance changes nothing', () => {
    // Normalised keys are at most 2 apart (squared distance 4): λ = 4 can never be exceeded.
    const off = ovqAttentionReference(seq, base);
    for (const spawnDistance of [4, Number.POSITIVE_INFINITY]) {
      const on = ovqAttentionReference(seq, { ...base, spawnDistance });
      expect(on.trace).toEqual(off.trace);
      expect(Array.from(on.output)).toEqual(Array.from(off.output));
    }
    const tiny = ovqAttentionReference(seq, { ...base, spawnDistance: 1e-9 });
    expect(tiny.state.size).toBe(5);
    expect(tiny.trace[0].spawned.length).toBe(5);
  });
});

describe('novelty spawn: chunked path', () => {
  for (const [T, d, C, N, lambda] of [
    [400, 12, 16, 24, 1.2],
    [300, 6, 8, 40, 0.6],
  ]) {
    const seq = randomSeq(T + d, T, d, 5);
    const config: OvqConfig = { chunkSize: C, capacity: N, beta: 3, spawnDistance: lambda };
    it(`T${T}-d${d}-C${C}-N${N}-λ${lambda}: spawns beyond the schedule, decisions float64-optimal`, () => {
      const run = ovqAttention(seq, config, { out: poisoned(T * 5) });
      expect(noveltySpawns(config, run.trace)).toBeGreaterThan(0);
      expect(run.state.size).toBeLessThanOrEqual(N);
      verifyDecisions(seq, config, run.trace);
      const ref = ovqAttentionReference(seq, config);
      expect(run.trace).toEqual(ref.trace);
      assertClose('output', ref.output, run.output, 1e-5);
    });
  }
  it('the JS kernels decide as the WASM kernels do (the novelty loop follows either spawn kernel)', () => {
    const seq = randomSeq(9, 300, 12, 5);
    const config: OvqConfig = { chunkSize: 16, capacity: 24, beta: 3, spawnDistance: 1.2 };
    const runs = (['wasm', 'js'] as const).map((kernels) => {
      setOvqKernels(kernels);
      try {
        return ovqAttention(seq, config);
      } finally {
        setOvqKernels('auto');
      }
    });
    expect(noveltySpawns(config, runs[0].trace)).toBeGreaterThan(0);
    expect(runs[1].trace).toEqual(runs[0].trace);
    assertClose('output', runs[0].output, runs[1].output, 1e-6);
  });
  it('the verifier rejects a dropped novelty spawn and a spawn within λ', () => {
    const seq = randomSeq(5, 200, 6, 5);
    const config: OvqConfig = { chunkSize: 8, capacity: 40, beta: 3, spawnDistance: 0.6 };
    const cfg = resolveOvqConfig(config);
    const trace = ovqAttention(seq, config).trace;
    const a = trace.findIndex(
      (r, i) =>
        r.spawned.length > spawnCount(cfg.growth, cfg.capacity, (i + 1) * 8, r.sizeBefore, 8),
    );
    expect(a).toBeGreaterThanOrEqual(0);
    // Dropping the last spawn of that absorb: its token joins row 0 instead; later absorbs keep
    // their own records, so the first failure is at absorb a.
    const dropped = structuredClone(trace);
    const j = dropped[a].spawned.pop() as number;
    dropped[a].assignment[j] = 0;
    expect(() => verifyDecisions(seq, config, dropped)).toThrow(`absorb ${a}:`);
    // With λ raised past every distance the same trace's novelty spawns are refused.
    expect(() => verifyDecisions(seq, { ...config, spawnDistance: 3.9 }, trace)).toThrow(
      /novelty spawn|spawns/,
    );
  });
});

describe('novelty spawn: gradients', () => {
  it('chunked and reference backward = central differences of the reference forward (T30-d4-C3-N8)', () => {
    const seq = randomSeq(41, 30, 4, 3);
    const config: OvqConfig = { chunkSize: 3, capacity: 8, beta: 2, spawnDistance: 0.5 };
    const dOutput = randn(createRng(8), 30 * 3);
    const chunked = ovqAttentionBackward(seq, config, dOutput);
    expect(noveltySpawns(config, chunked.trace)).toBeGreaterThan(0);
    const replay = chunked.trace;
    const ref = ovqAttentionReferenceBackward(seq, config, dOutput, { replay });
    const loss = () => dot(dOutput, ovqAttentionReference(seq, config, { replay }).output);
    for (const field of ['q', 'k', 'v'] as const) {
      const fd = centralDifferences(loss, seq[field] as Float64Array);
      assertClose(`d${field} reference`, fd, ref[`d${field}`], 1e-6);
      assertClose(`d${field} chunked`, fd, chunked[`d${field}`], 1e-5);
    }
    const h = 1e-6;
    const at = (beta: number) =>
      dot(dOutput, ovqAttentionReference(seq, { ...config, beta }, { replay }).output);
    assertClose('dbeta', [(at(2 + h) - at(2 - h)) / (2 * h)], [chunked.dbeta], 1e-5);
  });
});

describe('novelty spawn: input checks and saved state', () => {
  for (const bad of [0, -1, Number.NaN, '1', null]) {
    it(`spawnDistance ${String(bad)} is refused, naming the argument`, () => {
      const config = {
        chunkSize: 4,
        capacity: 4,
        beta: 1,
        spawnDistance: bad,
      } as unknown as OvqConfig;
      expect(() => resolveOvqConfig(config)).toThrow(OvqInputError);
      expect(() => resolveOvqConfig(config)).toThrow(
        /config\.spawnDistance: got .*expected a number > 0/,
      );
    });
  }
  it('a gradient w.r.t. the final state is refused (its size depends on the data)', () => {
    const seq = randomSeq(1, 20, 4, 3);
    const config: OvqConfig = { chunkSize: 4, capacity: 8, beta: 2, spawnDistance: 1 };
    const dFinalState = { keys: new Float64Array(0) };
    for (const backward of [ovqAttentionBackward, ovqAttentionReferenceBackward]) {
      expect(() => backward(seq, config, new Float64Array(60), { dFinalState } as never)).toThrow(
        /options\.dFinalState: is not supported with config\.spawnDistance/,
      );
    }
  });
  it('a saved state keeps λ, continues as one call would, and refuses another λ', () => {
    const seq = randomSeq(2, 120, 6, 3);
    const config: OvqConfig = { chunkSize: 8, capacity: 30, beta: 2, spawnDistance: 0.6 };
    const whole = ovqAttentionReference(seq, config);
    const state = createOvqState({ keyDim: 6, valueDim: 3 }, config);
    const first = {
      ...seq,
      q: seq.q.subarray(0, 60 * 6),
      k: seq.k.subarray(0, 60 * 6),
      v: seq.v.subarray(0, 60 * 3),
      seqLen: 60,
    };
    ovqAppend(state, first);
    const restored = deserializeOvqState(serializeOvqState(state));
    expect(restored.config.spawnDistance).toBe(0.6);
    const rest = {
      ...seq,
      q: seq.q.subarray(60 * 6),
      k: seq.k.subarray(60 * 6),
      v: seq.v.subarray(60 * 3),
      seqLen: 60,
    };
    const out = ovqAppend(restored, rest);
    assertClose('continued output', whole.output.subarray(60 * 3), out, 1e-12);
    expect(() =>
      ovqAttentionReference(rest, { ...config, spawnDistance: 1 }, { initialState: state }),
    ).toThrow(/config\.spawnDistance/);
  });
});

describe('a reserve for novelty spawn: saturating growth toward R < N rows', () => {
  it('the schedule saturates toward R (R ≥ N is the paper schedule)', () => {
    const at = (rows: number | undefined, tau: number) =>
      growthTarget(
        resolveOvqConfig({
          chunkSize: 4,
          capacity: 10,
          beta: 1,
          growth: { kind: 'saturating', rows },
        }).growth,
        10,
        tau,
      );
    for (const tau of [1, 7, 40, 1000, 1e6]) {
      expect(at(undefined, tau)).toBe(
        Math.max(1, Math.min(tau, Math.floor((10 * tau) / (10 + tau)))),
      );
      expect(at(10, tau)).toBe(at(undefined, tau));
      expect(at(25, tau)).toBe(at(undefined, tau));
      expect(at(6, tau)).toBe(Math.max(1, Math.min(tau, Math.floor((6 * tau) / (6 + tau)))));
      expect(at(6, tau)).toBeLessThan(6);
    }
  });

  it('one free row files one late novel span; a reserve of three files three', () => {
    // Filler near two directions; three late spans along three other directions, each after the
    // schedule has stopped (capacity 8: ⌊8τ/(8+τ)⌋ = 7 from τ = 56 on; with rows 5, 4 from τ = 20).
    const spans = [300, 400, 500];
    const seq = haystack(
      600,
      spans[0],
      spans.map((at, s) => [at, 4, 3 + s]),
      [6, 9],
    );
    const base = { chunkSize: 10, capacity: 8, beta: 4, spawnDistance: 1 };
    // Spans that got a row of their own (seeded by one of their tokens, joined by the rest).
    const filed = (config: OvqConfig) => {
      const { state, trace } = ovqAttentionReference(seq, config);
      return spans.filter((at) => {
        const record = trace[Math.floor(at / 10)];
        const j = at % 10;
        return record.spawned.includes(j) && state.counts[record.assignment[j]] === 4;
      }).length;
    };
    expect(filed(base)).toBe(1);
    expect(filed({ ...base, growth: { kind: 'saturating', rows: 5 } })).toBe(3);
    // Without novelty spawn the reserve stays empty: rows are left unused, nothing is filed.
    const unused = ovqAttentionReference(seq, {
      ...base,
      spawnDistance: undefined,
      growth: { kind: 'saturating', rows: 5 },
    });
    expect(unused.state.size).toBe(4);
  });

  it('bad rows are refused by name; a saved state keeps them and refuses others', () => {
    for (const rows of [0, -2, 1.5, Number.NaN, '4']) {
      expect(() =>
        ovqAttentionReference(randomSeq(1, 8, 2, 2), {
          chunkSize: 4,
          capacity: 4,
          beta: 1,
          growth: { kind: 'saturating', rows } as OvqConfig['growth'],
        }),
      ).toThrow(/config\.growth\.rows.*expected a positive integer/);
    }
    expect(() =>
      resolveOvqConfig({
        chunkSize: 4,
        capacity: 4,
        beta: 1,
        growth: { kind: 'saturating', rows: 2, alpha: 1 } as OvqConfig['growth'],
      }),
    ).toThrow(/config\.growth.*alpha/);
    const config: OvqConfig = {
      chunkSize: 4,
      capacity: 9,
      beta: 2,
      spawnDistance: 0.5,
      growth: { kind: 'saturating', rows: 4 },
    };
    const seq = randomSeq(3, 40, 4, 2);
    const { state } = ovqAttentionReference(seq, config);
    const restored = deserializeOvqState(serializeOvqState(state));
    expect(restored.config.growth).toEqual({ kind: 'saturating', rows: 4 });
    expect(() =>
      ovqAttentionReference(seq, { ...config, growth: 'saturating' }, { initialState: restored }),
    ).toThrow(/config\.growth/);
  });
});
