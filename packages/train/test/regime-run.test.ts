// The regime sweep end to end at toy size: lr search on validation, seeds at the picked rate,
// rows for every length/pairs/depth, resume skips finished cells, shards split whole groups.
import '@tensorflow/tfjs';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SLOW_TEST_TIMEOUT_MS } from '@ovq/vitest-config/timeouts';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import {
  cellTrainConfig,
  createTfjsMixer,
  Decoder,
  isTestTimeCell,
  mergeResults,
  pickedLr,
  planCells,
  RESULTS_SCHEMA,
  type RegimeConfig,
  type ResultsFile,
  runRegime,
  shardCells,
  unfitBudgets,
  validateResults,
  validateTrainConfig,
  withOvqBetaScale,
  withOvqCapacity,
  withOvqReserve,
  withOvqSpawnDistance,
} from '../src/index.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const config: RegimeConfig = {
  schema: 'ovq-regime/1',
  model: { dModel: 16, heads: 2, layers: 2, window: 8, chunkSize: 8 },
  trainLen: 32,
  batchSize: 4,
  steps: 2,
  evalMultiples: [1, 2],
  tasks: [
    {
      name: 'mqar',
      vocabSize: 128,
      trainSlices: [
        { seqLen: 16, numPairs: 2 },
        { seqLen: 32, numPairs: 4 },
      ],
      testCells: [
        { lengthMultiple: 1, numPairs: 4 },
        { lengthMultiple: 2, numPairs: 8 },
      ],
    },
    { name: 'niah', needleLength: 2, depths: [0, 1] },
  ],
  mixers: ['swa,ovq', 'swa,gdn'],
  budgets: [2048],
  seeds: [0, 1],
  lrs: [1e-3, 3e-3],
  validationSequences: 4,
  testSequences: 4,
  evalBatchSize: 4,
};

describe('regime sweep', () => {
  it('plans lr search then seeds per group, budgets matched, fixed-state mixers once', () => {
    const cells = planCells(config);
    // 2 tasks × 2 patterns × (2 lrs + 2 seeds).
    expect(cells).toHaveLength(16);
    const ovq = cells.find((c) => c.mixers === 'swa,ovq')!;
    expect(ovq.budget).toBe(2048);
    expect(ovq.mixerOptions.ovqCapacity).toBe(Math.floor((2048 / 2 - 8 * 16) / 17));
    const gdn = cells.find((c) => c.mixers === 'swa,gdn')!;
    expect(gdn.budget).toBeNull();
    expect(() =>
      planCells({ ...config, tasks: [{ name: 'byte-lm', evalMultiples: [1, 0.5] }] }),
    ).toThrow(
      /tasks\[0\]\.evalMultiples is \[1,0\.5\]; expected a non-empty array of positive integers/,
    );
    const shards = [0, 1, 2].map((i) => shardCells(cells, i, 3));
    expect(shards.flat()).toHaveLength(cells.length);
    for (const s of shards)
      for (const c of s)
        expect(shards.filter((t) => t.some((d) => d.group === c.group))).toHaveLength(1);
  });

  it('leaves a pattern out of a budget its fixed part is over, and says so; refuses one that fits none', () => {
    // VQ's two raw 8-token blocks take 2·2·8·16 = 512 numbers: no code fits in 512; OVQ does.
    const mixed = {
      ...config,
      tasks: [config.tasks[1]],
      mixers: ['swa,ovq', 'swa,vq'],
      budgets: [512, 2048],
    };
    const groups = [...new Set(planCells(mixed).map((c) => c.group))];
    expect(groups).toEqual(['niah/swa,ovq/512', 'niah/swa,ovq/2048', 'niah/swa,vq/2048']);
    expect(unfitBudgets(mixed)).toEqual([
      {
        mixers: 'swa,vq',
        budget: 512,
        reason: expect.stringMatching(/budget 512 cannot hold one vqCodes row of vq/),
      },
    ]);
    expect(unfitBudgets(config)).toEqual([]);
    expect(() => planCells({ ...mixed, budgets: [512] })).toThrow(
      /regime config: mixers: "swa,vq" fits none of the budgets \(budget 512 cannot hold/,
    );
  });

  it('model.mixerOptions reach every cell’s training config; the sizes the plan sets are refused there', () => {
    const withNorm = {
      ...config,
      model: { ...config.model, mixerOptions: { gdnOutputNorm: true } },
    };
    const cells = planCells(withNorm);
    expect(cells.length).toBe(planCells(config).length);
    for (const cell of cells) {
      const train = cellTrainConfig(withNorm, cell, 1e-3);
      expect(train.model.mixerOptions?.gdnOutputNorm, cell.id).toBe(true);
      expect(train.model.mixerOptions?.window, cell.id).toBe(config.model.window);
    }
    // Without it a cell's training config is as before (old checkpoints still resume).
    const plain = planCells(config)[0];
    expect(cellTrainConfig(config, plain, 1e-3).model.mixerOptions).not.toHaveProperty(
      'gdnOutputNorm',
    );
    expect(() =>
      planCells({ ...config, model: { ...config.model, mixerOptions: { ovqCapacity: 3 } } }),
    ).toThrow(/regime config: model\.mixerOptions\.ovqCapacity is set; the plan sets it/);
    expect(() =>
      planCells({ ...config, model: { ...config.model, mixerOptions: [] as never } }),
    ).toThrow(/regime config: model\.mixerOptions is \[\]; expected an object/);
  });

  it(
    'runs, writes rows with commands, and a second pass runs nothing',
    async () => {
      let file: ResultsFile = { schema: RESULTS_SCHEMA, commit: 'test', machine: 'test', rows: [] };
      const cells = planCells({ ...config, tasks: [config.tasks[1]], mixers: ['swa,ovq'] });
      const options = {
        createMixer: createTfjsMixer,
        load: async () => file,
        save: async (rows: ResultsFile['rows']) => {
          file = mergeResults(file, rows);
        },
        commandFor: (c: { id: string }) => `ovq-train sweep --config toy.json --only ${c.id}`,
      };
      expect(await runRegime(config, cells, options)).toBe(4);
      const test = file.rows.filter((r) => r.task === 'niah');
      // 2 seeds × 2 lengths × 2 depths.
      expect(test).toHaveLength(8);
      expect(new Set(test.map((r) => r.metric))).toEqual(
        new Set(['accuracy@depth=0', 'accuracy@depth=1']),
      );
      expect(new Set(test.map((r) => r.evalLen))).toEqual(new Set([32, 64]));
      for (const r of test) {
        expect(r.value).toBeGreaterThanOrEqual(0);
        expect(r.value).toBeLessThanOrEqual(1);
        expect(r.stateNumbers).toBeGreaterThan(0);
        expect(config.lrs).toContain(r.lr);
        expect(r.command).toMatch(
          /^ovq-train sweep --config toy\.json --only niah\/swa,ovq\/2048\/seed=\d$/,
        );
      }
      const validation = file.rows.filter((r) => r.task === 'niah:validation');
      expect(validation.map((r) => r.lr).sort()).toEqual([1e-3, 1e-3, 3e-3, 3e-3]);
      expect(await runRegime(config, cells, options)).toBe(0);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  it('test cells wait for the lr search when it has rates to choose from, not when it has one', () => {
    const empty: ResultsFile = { schema: RESULTS_SCHEMA, commit: 't', machine: 't', rows: [] };
    const test = planCells(config).find((c) => c.phase === 'test')!;
    expect(config.lrs.length).toBeGreaterThan(1);
    expect(() => pickedLr(empty, config, test)).toThrow(/lr search has no result for lr/);
    expect(pickedLr(empty, { ...config, lrs: [0.02] }, test)).toBe(0.02);
  });

  it('a stop requested while the results load starts no further cell', async () => {
    const cells = planCells({ ...config, tasks: [config.tasks[1]], mixers: ['swa,ovq'] });
    const stop = new AbortController();
    let saved = 0;
    const ran = await runRegime(config, cells, {
      createMixer: createTfjsMixer,
      // The signal handler runs during this await, after the loop's first check.
      load: async () => {
        stop.abort();
        return { schema: RESULTS_SCHEMA, commit: 't', machine: 't', rows: [] };
      },
      save: async () => {
        saved++;
      },
      commandFor: (c: { id: string }) => c.id,
      signal: stop.signal,
    });
    expect(ran).toBe(0);
    expect(saved).toBe(0);
  });

  it("the first seed's test cell scores the lr search's finished model instead of retraining it", async () => {
    const cells = planCells({ ...config, tasks: [config.tasks[1]], mixers: ['swa,ovq'] });
    const sweep = async (dir?: string) => {
      let file: ResultsFile = { schema: RESULTS_SCHEMA, commit: 't', machine: 't', rows: [] };
      await runRegime(config, cells, {
        createMixer: createTfjsMixer,
        load: async () => file,
        save: async (rows: ResultsFile['rows']) => {
          file = mergeResults(file, rows);
        },
        commandFor: (c: { id: string }) => c.id,
        ...(dir
          ? {
              checkpointFor: (c: { id: string }) => {
                const path = join(dir, c.id.replace(/[^A-Za-z0-9.=,-]+/g, '_'), 'ckpt.bin');
                return { path, exists: existsSync(path) };
              },
            }
          : {}),
      });
      return file.rows.filter((r) => r.task === 'niah');
    };
    const dir = mkdtempSync(join(tmpdir(), 'regime-reuse-'));
    try {
      const reused = await sweep(dir);
      // Seed 0 trained no checkpoint of its own; seed 1 did.
      expect(existsSync(join(dir, 'niah_swa,ovq_2048_seed=0', 'ckpt.bin'))).toBe(false);
      expect(existsSync(join(dir, 'niah_swa,ovq_2048_seed=1', 'ckpt.bin'))).toBe(true);
      const retrained = await sweep();
      const key = (r: ResultsFile['rows'][number]) => `${r.seed}|${r.evalLen}|${r.metric}`;
      expect(reused.map(key).sort()).toEqual(retrained.map(key).sort());
      for (const r of reused) {
        const twin = retrained.find((t) => key(t) === key(r))!;
        expect(r.value).toBe(twin.value);
        expect(r.lr).toBe(twin.lr);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it(
    'byte-LM: loss rows carry the binned loss by position, plus the loss ratio to 1×',
    async () => {
      // A small UTF-8 corpus folder (40 documents: the held-out test split gets 2 of them).
      const corpus = mkdtempSync(join(tmpdir(), 'ovq-regime-corpus-'));
      mkdirSync(join(corpus, 'docs'));
      for (let i = 0; i < 40; i++)
        writeFileSync(
          join(corpus, 'docs', `d${String(i).padStart(2, '0')}.txt`),
          `document ${i}: ${'the cat sat on the mat and looked at the hat. '.repeat(12 + i)}`,
        );
      onTestFinished(() => rmSync(corpus, { recursive: true, force: true }));
      let file: ResultsFile = { schema: RESULTS_SCHEMA, commit: 'test', machine: 'test', rows: [] };
      const byteLm: RegimeConfig = {
        ...config,
        tasks: [{ name: 'byte-lm', corpus, evalMultiples: [1, 2, 4] }],
        mixers: ['swa,ovq'],
        seeds: [0],
        lrs: [3e-3],
      };
      const ran = await runRegime(byteLm, planCells(byteLm), {
        createMixer: createTfjsMixer,
        load: async () => file,
        save: async (rows: ResultsFile['rows']) => {
          file = mergeResults(file, rows);
        },
        commandFor: (c: { id: string }) => `ovq-train sweep --config toy.json --only ${c.id}`,
      });
      expect(ran).toBe(2);
      // The file (with its new optional field) still validates.
      validateResults(JSON.parse(JSON.stringify(file)));
      const loss = file.rows.filter((r) => r.task === 'byte-lm' && r.metric === 'loss');
      expect(loss.map((r) => r.evalLen).sort((a, b) => a - b)).toEqual([32, 64, 128]);
      for (const r of loss) {
        // 32 bins of equal width: their mean is the mean loss over all positions.
        expect(r.byPosition).toHaveLength(32);
        const mean = r.byPosition!.reduce((a, b) => a + b, 0) / 32;
        expect(mean).toBeCloseTo(r.value, 4);
        expect(Math.max(...r.byPosition!)).toBeGreaterThan(Math.min(...r.byPosition!));
      }
      const base = loss.find((r) => r.evalLen === 32)!.value;
      const ratios = file.rows.filter((r) => r.metric === 'loss-ratio');
      expect(ratios.map((r) => r.evalLen).sort((a, b) => a - b)).toEqual([64, 128]);
      for (const r of ratios) {
        expect(r.value).toBe(loss.find((l) => l.evalLen === r.evalLen)!.value / base);
        expect(r.byPosition).toBeUndefined();
      }
      // The lr search scores the training length only, without a ratio.
      const validation = file.rows.filter((r) => r.task === 'byte-lm:validation');
      expect(validation.map((r) => [r.metric, r.evalLen])).toEqual([['loss', 32]]);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  describe('ablations', () => {
    const niah = config.tasks[1];
    const ablated = (ablations: RegimeConfig['ablations']): RegimeConfig => ({
      ...config,
      tasks: [niah],
      mixers: ['swa,ovq', 'swa,gdn'],
      ablations,
    });

    it('plans trained variants as groups of their own and test-time capacity in the default group', () => {
      const cells = planCells(
        ablated({
          variants: [
            { name: 'growth=log', growth: { kind: 'log', alpha: 4 } },
            { name: 'spawn=random', spawn: 'random' },
            { name: 'update=ema', update: { kind: 'ema', rate: 0.1 } },
            { name: 'spawnDistance=1', spawnDistance: 1 },
          ],
          evalCapacity: [0.25, 4],
          evalBetaScale: [2],
          evalSpawnDistance: [1],
        }),
      );
      // Main: 2 patterns × (2 lrs + 2 seeds); variants: 4 × (2 + 2); capacity: 2 factors × 2
      // seeds; β: 1 factor × 2 seeds; novelty spawn: 1 distance × 2 seeds.
      expect(cells).toHaveLength(8 + 16 + 4 + 2 + 2);
      const main = cells.find((c) => c.id === 'niah/swa,ovq/2048/seed=0')!;
      const log = cells.find((c) => c.id === 'niah/swa,ovq[growth=log]/2048/lr=0.001')!;
      expect(log.group).toBe('niah/swa,ovq[growth=log]/2048');
      expect(log.mixers).toBe('swa,ovq');
      expect(log.mixerOptions).toEqual({
        ...main.mixerOptions,
        ovqGrowth: { kind: 'log', alpha: 4 },
      });
      expect(
        cells.find((c) => c.id === 'niah/swa,ovq[update=ema]/2048/seed=1')!.mixerOptions,
      ).toMatchObject({ ovqUpdate: { kind: 'ema', rate: 0.1 } });
      expect(
        cells.find((c) => c.id === 'niah/swa,ovq[spawnDistance=1]/2048/lr=0.001')!.mixerOptions,
      ).toEqual({ ...main.mixerOptions, ovqSpawnDistance: 1 });
      const quarter = cells.filter((c) => c.evalCapacity === 0.25);
      expect(quarter.map((c) => c.id)).toEqual([
        'niah/swa,ovq[capacity×0.25]/2048/seed=0',
        'niah/swa,ovq[capacity×0.25]/2048/seed=1',
      ]);
      for (const c of quarter) {
        expect(c.group).toBe('niah/swa,ovq/2048');
        expect(c.phase).toBe('test');
        expect(c.mixerOptions).toEqual(main.mixerOptions);
      }
      const sharper = cells.filter((c) => c.evalBetaScale !== undefined);
      expect(sharper.map((c) => [c.id, c.group, c.phase, c.evalBetaScale])).toEqual([
        ['niah/swa,ovq[β×2]/2048/seed=0', 'niah/swa,ovq/2048', 'test', 2],
        ['niah/swa,ovq[β×2]/2048/seed=1', 'niah/swa,ovq/2048', 'test', 2],
      ]);
      expect(sharper.every((c) => isTestTimeCell(c) && c.evalCapacity === undefined)).toBe(true);
      const novelty = cells.filter((c) => c.evalSpawnDistance !== undefined);
      expect(novelty.map((c) => [c.id, c.group, c.phase, c.evalSpawnDistance])).toEqual([
        ['niah/swa,ovq[novelty>1]/2048/seed=0', 'niah/swa,ovq/2048', 'test', 1],
        ['niah/swa,ovq[novelty>1]/2048/seed=1', 'niah/swa,ovq/2048', 'test', 1],
      ]);
      expect(novelty.every((c) => isTestTimeCell(c) && c.evalBetaScale === undefined)).toBe(true);
      for (const c of novelty) expect(c.mixerOptions).toEqual(main.mixerOptions);
      expect(isTestTimeCell(main)).toBe(false);
      // Sharding keeps test-time cells with the group whose search and model they use.
      for (const shard of [0, 1].map((i) => shardCells(cells, i, 2)))
        if (shard.some((c) => isTestTimeCell(c)))
          expect(shard.some((c) => c.id === 'niah/swa,ovq/2048/lr=0.001')).toBe(true);
    });

    it('runs the trained variants on ablations.seeds; capacity cells keep every seed', () => {
      const cells = planCells(
        ablated({
          variants: [{ name: 'spawn=random', spawn: 'random' }],
          seeds: [1],
          evalCapacity: [4],
        }),
      );
      const variant = cells.filter((c) => c.variant === 'spawn=random');
      // The lr search stays on the config's first seed; the test cells use ablations.seeds only.
      expect(variant.map((c) => c.id)).toEqual([
        'niah/swa,ovq[spawn=random]/2048/lr=0.001',
        'niah/swa,ovq[spawn=random]/2048/lr=0.003',
        'niah/swa,ovq[spawn=random]/2048/seed=1',
      ]);
      expect(variant.filter((c) => c.phase === 'lr-search').map((c) => c.seed)).toEqual([0, 0]);
      expect(cells.filter((c) => c.evalCapacity === 4).map((c) => c.seed)).toEqual([0, 1]);
    });

    it('refuses bad ablations, naming the field', () => {
      const bad: [RegimeConfig['ablations'], RegExp][] = [
        [
          { mixers: 'swa,gdn' },
          /ablations\.mixers is "swa,gdn"; expected a pattern with an ovq layer/,
        ],
        [{ mixers: 'ovq' }, /ablations\.mixers "ovq" is not in mixers \(swa,ovq, swa,gdn\)/],
        [{ budgets: [999] }, /ablations\.budgets\[0\] is 999; expected one of budgets \(2048\)/],
        [{ tasks: ['mqar'] }, /ablations\.tasks: "mqar" is no task of this config \(niah\)/],
        [
          { variants: [{ name: 'g', growth: 'log' as never }] },
          /ablations\.variants\[0\] \(g\): .*config\.growth/,
        ],
        [
          {
            variants: [
              { name: 'a', spawn: 'random' },
              { name: 'a', spawn: 'first' },
            ],
          },
          /ablations\.variants\[1\]\.name "a" is used twice/,
        ],
        [{ variants: [{ name: 'x y' }] }, /ablations\.variants\[0\]\.name is "x y"/],
        [
          { variants: [{ name: 'x', read: 'gaussian' } as never] },
          /ablations\.variants\[0\]: unknown field read/,
        ],
        [{ evalCapacity: [0] }, /ablations\.evalCapacity\[0\] is 0; expected a positive factor/],
        [
          { evalBetaScale: [-1] },
          /ablations\.evalBetaScale\[0\] is -1; expected a positive factor of the trained β/,
        ],
        [
          { variants: [{ name: 'n', spawnDistance: -1 }] },
          /ablations\.variants\[0\] \(n\): config\.spawnDistance: got -1/,
        ],
        [
          { evalSpawnDistance: [0] },
          /ablations\.evalSpawnDistance\[0\] is 0; expected a squared key distance > 0/,
        ],
        [
          { evalCapcity: [2] } as never,
          /ablations: unknown field evalCapcity \(expected mixers, .*evalSpawnDistance\)/,
        ],
        [{ seeds: [] }, /ablations\.seeds is \[\]; expected a non-empty array of seeds/],
        [{ seeds: [0, -1] }, /ablations\.seeds\[1\] is -1; expected a non-negative integer/],
        [{ seeds: [1, 1] }, /ablations\.seeds is \[1,1\]; expected each seed once/],
        [{ seeds: [0, 2] }, /ablations\.seeds\[1\] is 2; expected one of seeds \(0, 1\)/],
      ];
      for (const [ablations, message] of bad)
        expect(() => planCells(ablated(ablations))).toThrow(message);
    });

    it('the training config checks the OVQ axes with @ovq/core', () => {
      const cell = planCells(
        ablated({ variants: [{ name: 'growth=log', growth: { kind: 'log', alpha: 4 } }] }),
      ).find((c) => c.variant === 'growth=log')!;
      const ok = cellTrainConfig(config, cell, 1e-3);
      expect(() => validateTrainConfig(ok)).not.toThrow();
      const withAxis = (key: string, value: unknown) => ({
        ...ok,
        model: { ...ok.model, mixerOptions: { ...ok.model.mixerOptions, [key]: value } },
      });
      expect(() => validateTrainConfig(withAxis('ovqGrowth', 'log'))).toThrow(
        /model\.mixerOptions\.ovqGrowth: .*config\.growth/,
      );
      expect(() => validateTrainConfig(withAxis('ovqSpawn', 'nearest'))).toThrow(
        /model\.mixerOptions\.ovqSpawn/,
      );
      expect(() => validateTrainConfig(withAxis('ovqUpdate', { kind: 'ema', rate: 2 }))).toThrow(
        /model\.mixerOptions\.ovqUpdate: .*rate/,
      );
      expect(() => validateTrainConfig(withAxis('ovqSpawnDistance', 1))).not.toThrow();
      expect(() => validateTrainConfig(withAxis('ovqSpawnDistance', 0))).toThrow(
        /model\.mixerOptions\.ovqSpawnDistance: config\.spawnDistance: got 0; expected a number > 0/,
      );
    });

    /** A built swa,ovq model whose weights the seed alone would not reproduce. */
    function perturbedOvqModel(): Decoder {
      const model = new Decoder(
        {
          vocabSize: 32,
          dModel: 16,
          heads: 2,
          layers: 2,
          mixers: 'swa,ovq',
          mixerOptions: { window: 8, ovqCapacity: 8, ovqChunkSize: 8 },
          seed: 1,
        },
        createTfjsMixer,
      );
      model.build(16);
      for (const v of model.variables.values())
        v.assign(tf.add(v, tf.randomNormal(v.shape, 0, 0.1, 'float32', 7)));
      return model;
    }

    it('a capacity-scaled copy keeps every weight (same outputs at factor 1)', () => {
      const model = perturbedOvqModel();
      const same = withOvqCapacity(model, 1, createTfjsMixer);
      const quarter = withOvqCapacity(model, 0.25, createTfjsMixer);
      try {
        expect(quarter.config.mixerOptions!.ovqCapacity).toBe(2);
        const x = tf.tensor2d(
          Int32Array.from({ length: 48 }, (_, i) => (i * 7) % 32),
          [1, 48],
          'int32',
        );
        const [a, b, c] = [model, same, quarter].map((m) => m.forward(x).dataSync());
        expect(Array.from(b)).toEqual(Array.from(a));
        // Fewer rows than the 48 tokens need: the quarter-capacity model reads differently.
        expect(Array.from(c)).not.toEqual(Array.from(a));
        expect(quarter.stateSize(48)[1]).toBeLessThan(model.stateSize(48)[1]);
      } finally {
        for (const m of [model, same, quarter]) m.dispose();
      }
    });

    it('a novelty-spawn copy keeps every weight and changes only how the dictionary files tokens', () => {
      const model = perturbedOvqModel();
      // Normalised keys are at most squared distance 4 apart: λ = 4 never spawns, λ = 1e-6 spawns
      // every distinct key up to the capacity (8 rows where the schedule holds 6 after 48 tokens).
      const never = withOvqSpawnDistance(model, 4, createTfjsMixer);
      const always = withOvqSpawnDistance(model, 1e-6, createTfjsMixer);
      try {
        expect(always.config.mixerOptions!.ovqSpawnDistance).toBe(1e-6);
        expect(model.config.mixerOptions!.ovqSpawnDistance).toBeUndefined();
        const x = tf.tensor2d(
          Int32Array.from({ length: 48 }, (_, i) => (i * 7) % 32),
          [1, 48],
          'int32',
        );
        const [a, b, c] = [model, never, always].map((m) => m.forward(x).dataSync());
        expect(Array.from(b)).toEqual(Array.from(a));
        expect(Array.from(c)).not.toEqual(Array.from(a));
        expect(Array.from(c).every(Number.isFinite)).toBe(true);
        // The state budget is the capacity's, unchanged.
        expect(always.stateSize(48)).toEqual(model.stateSize(48));
      } finally {
        for (const m of [model, never, always]) m.dispose();
      }
      expect(() => withOvqSpawnDistance(model, 0, createTfjsMixer)).toThrow(
        /evalSpawnDistance: distance is 0; expected a number > 0/,
      );
    });

    it('a reserve copy grows toward N − reserve rows and leaves the rest to novelty spawn', async () => {
      const model = perturbedOvqModel();
      const x = tf.tensor2d(
        Int32Array.from({ length: 48 }, (_, i) => (i * 7) % 32),
        [1, 48],
        'int32',
      );
      // λ = 4 never spawns and λ = 1e-6 always does (see above); capacity 8, 48 tokens.
      const never = withOvqSpawnDistance(model, 4, createTfjsMixer);
      const always = withOvqSpawnDistance(model, 1e-6, createTfjsMixer);
      const copies = [
        withOvqReserve(never, 4, createTfjsMixer),
        withOvqReserve(always, 4, createTfjsMixer),
      ];
      try {
        expect(copies[0].config.mixerOptions!.ovqGrowth).toEqual({ kind: 'saturating', rows: 4 });
        const size = async (m: Decoder) => (await m.dictionaryHealth(x))[0].size;
        // The schedule alone: ⌊8·48/56⌋ = 6 rows; toward 4: ⌊4·48/52⌋ = 3; novelty fills all 8.
        expect(await size(never)).toBe(6);
        expect(await size(copies[0])).toBe(3);
        expect(await size(copies[1])).toBe(8);
        expect(Array.from(copies[0].forward(x).dataSync())).not.toEqual(
          Array.from(never.forward(x).dataSync()),
        );
        expect(copies[0].stateSize(48)).toEqual(model.stateSize(48));
      } finally {
        for (const m of [model, never, always, ...copies]) m.dispose();
        x.dispose();
      }
      const plain = perturbedOvqModel();
      const novel = withOvqSpawnDistance(plain, 1, createTfjsMixer);
      try {
        expect(() => withOvqReserve(plain, 2, createTfjsMixer)).toThrow(
          /evalReserve: the model has no novelty spawn/,
        );
        for (const bad of [0, 8, 2.5])
          expect(() => withOvqReserve(novel, bad, createTfjsMixer)).toThrow(
            new RegExp(`evalReserve: reserve is ${bad}; expected an integer in \\[1, 7\\]`),
          );
        const logGrowth = new Decoder(
          {
            ...novel.config,
            mixerOptions: { ...novel.config.mixerOptions, ovqGrowth: { kind: 'log', alpha: 2 } },
          },
          createTfjsMixer,
        );
        expect(() => withOvqReserve(logGrowth, 2, createTfjsMixer)).toThrow(
          /a reserve applies to saturating growth/,
        );
        logGrowth.dispose();
      } finally {
        plain.dispose();
        novel.dispose();
      }
    });

    it('a β-scaled copy shifts every OVQ head log β by ln f and leaves the model as it was', () => {
      const model = perturbedOvqModel();
      const before = Array.from(model.variables.get('block1.ovq.log_beta')!.dataSync());
      const same = withOvqBetaScale(model, 1, createTfjsMixer);
      const sharper = withOvqBetaScale(model, 2, createTfjsMixer);
      try {
        const scaled = Array.from(sharper.variables.get('block1.ovq.log_beta')!.dataSync());
        expect(scaled).toHaveLength(2);
        for (const [h, b] of scaled.entries()) expect(b - before[h]).toBeCloseTo(Math.log(2), 5);
        // Every other weight is copied unchanged, and the source model keeps its β.
        for (const [name, v] of model.variables)
          if (name !== 'block1.ovq.log_beta')
            expect(Array.from(sharper.variables.get(name)!.dataSync())).toEqual(
              Array.from(v.dataSync()),
            );
        expect(Array.from(model.variables.get('block1.ovq.log_beta')!.dataSync())).toEqual(before);
        const x = tf.tensor2d(
          Int32Array.from({ length: 48 }, (_, i) => (i * 5) % 32),
          [1, 48],
          'int32',
        );
        const [a, b, c] = [model, same, sharper].map((m) => m.forward(x).dataSync());
        expect(Array.from(b)).toEqual(Array.from(a));
        expect(Array.from(c)).not.toEqual(Array.from(a));
        expect(Array.from(c).every(Number.isFinite)).toBe(true);
      } finally {
        for (const m of [model, same, sharper]) m.dispose();
      }
      expect(() => withOvqBetaScale(model, 0, createTfjsMixer)).toThrow(
        /evalBetaScale: factor is 0; expected a finite number > 0/,
      );
      const noOvq = new Decoder(
        { vocabSize: 32, dModel: 16, heads: 2, layers: 2, mixers: 'swa,linear', seed: 1 },
        createTfjsMixer,
      );
      noOvq.build(16);
      try {
        expect(() => withOvqBetaScale(noOvq, 2, createTfjsMixer)).toThrow(
          /evalBetaScale: the model has no OVQ layer with a log_beta weight/,
        );
      } finally {
        noOvq.dispose();
      }
    });

    it('a capacity-scaled copy keeps non-trainable mixer state (a VQ codebook) too', () => {
      const model = new Decoder(
        {
          vocabSize: 32,
          dModel: 16,
          heads: 2,
          layers: 2,
          mixers: 'vq,ovq',
          mixerOptions: { window: 8, ovqCapacity: 8, ovqChunkSize: 8, vqCodes: 4 },
          seed: 1,
        },
        createTfjsMixer,
      );
      model.build(16);
      expect(model.buffers.size).toBeGreaterThan(0);
      // Statistics the seed alone would not reproduce (as after EMA steps).
      for (const v of model.buffers.values())
        v.assign(tf.add(v, tf.randomUniform(v.shape, 0.5, 1.5, 'float32', 3)));
      const scaled = withOvqCapacity(model, 2, createTfjsMixer);
      try {
        for (const [name, v] of model.buffers)
          expect(Array.from(scaled.buffers.get(name)!.dataSync())).toEqual(
            Array.from(v.dataSync()),
          );
      } finally {
        scaled.dispose();
        model.dispose();
      }
    });

    it(
      'runs at toy size: variant rows, and capacity rows from the default model it reuses',
      async () => {
        let file: ResultsFile = { schema: RESULTS_SCHEMA, commit: 't', machine: 't', rows: [] };
        const toy: RegimeConfig = {
          ...ablated({
            variants: [{ name: 'growth=log', growth: { kind: 'log', alpha: 4 } }],
            evalCapacity: [0.25],
            evalBetaScale: [4],
            evalSpawnDistance: [0.5],
          }),
          mixers: ['swa,ovq'],
          seeds: [0],
          lrs: [3e-3],
        };
        const dir = mkdtempSync(join(tmpdir(), 'regime-ablation-'));
        onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
        const ran = await runRegime(toy, planCells(toy), {
          createMixer: createTfjsMixer,
          load: async () => file,
          save: async (rows: ResultsFile['rows']) => {
            file = mergeResults(file, rows);
          },
          checkpointFor: (c: { id: string }) => {
            const path = join(dir, c.id.replace(/[^A-Za-z0-9.=,-]+/g, '_'), 'ckpt.bin');
            return { path, exists: existsSync(path) };
          },
          commandFor: (c: { id: string }) => c.id,
        });
        expect(ran).toBe(7);
        const test = (mixers: string) =>
          file.rows.filter((r) => r.task === 'niah' && r.mixers === mixers);
        const [plain, log, quarter, sharper, novelty] = [
          'swa,ovq',
          'swa,ovq[growth=log]',
          'swa,ovq[capacity×0.25]',
          'swa,ovq[β×4]',
          'swa,ovq[novelty>0.5]',
        ].map(test);
        expect(plain).toHaveLength(4);
        expect(log).toHaveLength(4);
        expect(quarter).toHaveLength(4);
        expect(sharper).toHaveLength(4);
        expect(novelty).toHaveLength(4);
        for (const [rows, id] of [
          [sharper, 'niah/swa,ovq[β×4]/2048/seed=0'],
          [novelty, 'niah/swa,ovq[novelty>0.5]/2048/seed=0'],
        ] as const) {
          for (const b of rows) {
            const twin = plain.find((p) => p.evalLen === b.evalLen && p.metric === b.metric)!;
            expect([b.lr, b.stateNumbers, b.seed]).toEqual([twin.lr, twin.stateNumbers, twin.seed]);
            expect(b.command).toBe(id);
          }
        }
        const searched = file.rows.filter((r) => r.task === 'niah:validation').map((r) => r.mixers);
        expect(new Set(searched)).toEqual(new Set(['swa,ovq', 'swa,ovq[growth=log]']));
        for (const q of quarter) {
          const twin = plain.find((p) => p.evalLen === q.evalLen && p.metric === q.metric)!;
          expect(q.lr).toBe(twin.lr);
          expect(q.stateNumbers).toBeLessThan(twin.stateNumbers);
          expect(q.command).toBe(`niah/swa,ovq[capacity×0.25]/2048/seed=0`);
        }
        // The capacity cell scored the lr search's finished model: it trained nothing of its own.
        expect(existsSync(join(dir, 'niah_swa,ovq_capacity_0.25_2048_seed=0'))).toBe(false);
        expect(readdirSync(dir).some((d) => d.includes('_4_2048'))).toBe(false);
        expect(readdirSync(dir).some((d) => d.includes('novelty'))).toBe(false);
        expect(existsSync(join(dir, 'niah_swa,ovq_growth=log_2048_lr=0.003', 'ckpt.bin'))).toBe(
          true,
        );
      },
      SLOW_TEST_TIMEOUT_MS,
    );
  });
});
