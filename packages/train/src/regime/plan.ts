// The regime experiment as a plan of cells (ALGORITHM.md §6–7; issue "OVQ in its own regime"):
// every mixer pattern at every matched state budget, the learning rate picked per (task, mixers,
// budget) on a validation split with seed 0, then every seed trained at that rate and scored on a
// separate test split at 1×, 4×, 16× the training length.
import { resolveOvqConfig } from '@ovq/core';
import type { MixerOptions } from '../model/decoder.js';
import { MIXER_KINDS, type MixerKind, mixerSchedule } from '../model/mixers.js';
import { type BudgetMatch, BudgetTooSmallError, matchBudget } from './budget.js';

export type RegimeTask =
  | {
      /** Zoology MQAR: train on a mixture of (length, pairs) slices, test per (length, pairs). */
      name: 'mqar';
      vocabSize: number;
      trainSlices: { seqLen: number; numPairs: number; weight?: number }[];
      /** Test cells as (multiple of the training length, pairs). */
      testCells: { lengthMultiple: number; numPairs: number }[];
      powerA?: number;
    }
  | {
      /** NIAH-S1: random depth in training; test on a length × depth grid. */
      name: 'niah';
      needleLength?: number;
      depths: number[];
      filler?: 'synthetic' | 'corpus';
      /** Evaluation lengths of this task (multiples of trainLen); default config.evalMultiples. */
      evalMultiples?: number[];
    }
  | {
      name: 'byte-lm';
      corpus?: string;
      /** e.g. [1, 4, 8, 16] for the extrapolation curve; default config.evalMultiples. */
      evalMultiples?: number[];
    };

export type RegimeConfig = {
  schema: 'ovq-regime/1';
  model: {
    dModel: number;
    heads: number;
    layers: number;
    mlpHidden?: number;
    /** Keep the token embedding at its seeded random values (see ModelConfig.freezeEmbedding). */
    freezeEmbedding?: boolean;
    /** Window of the SWA layers (and KVM's raw window), OVQ chunk size. */
    window: number;
    chunkSize: number;
    /**
     * Further mixer options for every cell (e.g. `{ gdnOutputNorm: true }`); the sizes the plan
     * sets itself (window, chunk, OVQ capacity, KVM budget, VQ codes) are not allowed here.
     */
    mixerOptions?: MixerOptions;
  };
  trainLen: number;
  batchSize: number;
  steps: number;
  warmup?: number;
  weightDecay?: number;
  clip?: number;
  /** Evaluation lengths as multiples of trainLen. */
  evalMultiples: number[];
  tasks: RegimeTask[];
  /** Mixer patterns, e.g. "swa" (SWA only), "swa,ovq", "swa,softmax". */
  mixers: string[];
  /** State budgets: numbers one long-range layer holds per sequence (ALGORITHM.md §6). */
  budgets: number[];
  seeds: number[];
  /** Learning-rate grid searched on the validation split with the first seed. */
  lrs: number[];
  validationSequences: number;
  testSequences: number;
  evalBatchSize: number;
  backend?: string;
  /** OVQ ablations in the trained setting (planned after the main cells). */
  ablations?: RegimeAblations;
};

/** One trained variant of OVQ's algorithm; its rows carry `mixers` = `<pattern>[<name>]`. */
export type OvqVariant = {
  name: string;
  growth?: MixerOptions['ovqGrowth'];
  spawn?: MixerOptions['ovqSpawn'];
  update?: MixerOptions['ovqUpdate'];
  /** Novelty spawn while training (@ovq/core `spawnDistance`, an extension). */
  spawnDistance?: MixerOptions['ovqSpawnDistance'];
};

export type RegimeAblations = {
  /** The pattern ablated; default "swa,ovq" (it must contain an OVQ layer). */
  mixers?: string;
  /** Tasks (by name) the ablations run on; default every task of the config. */
  tasks?: RegimeTask['name'][];
  /** Budgets the ablations run at; default every budget of the config. */
  budgets?: number[];
  /** Trained variants: each its own lr search and seeds, like a mixer pattern. */
  variants?: OvqVariant[];
  /**
   * Seeds the trained variants run (default: the config's seeds). The lr search still runs on the
   * config's first seed; test-time capacity cells score every seed's default model.
   */
  seeds?: number[];
  /**
   * Test-time capacity as multiples of the trained N (e.g. [0.25, 4]): the default model of each
   * seed, scored with every OVQ layer's capacity changed. Rows: `<pattern>[capacity×f]`.
   */
  evalCapacity?: number[];
  /**
   * Test-time read sharpness as multiples of the trained β (e.g. [0.5, 2]): the default model of
   * each seed, scored with every OVQ layer's β multiplied by f. Rows: `<pattern>[β×f]`.
   */
  evalBetaScale?: number[];
  /**
   * Test-time novelty spawn (@ovq/core `spawnDistance`, an extension): the default model of each
   * seed, scored with every OVQ layer seeding a row for any token farther than λ from every row
   * while its capacity allows. Rows: `<pattern>[novelty>λ]`.
   */
  evalSpawnDistance?: number[];
};

/** One training run of the plan. `lr` is undefined for test cells until the search has run. */
export type RegimeCell = {
  id: string;
  /** task/mixers/budget: the lr search and the seeds of one group run in one process. */
  group: string;
  task: RegimeTask;
  mixers: string;
  /** Budget the long-range layers were matched to; null for unbudgeted or fixed-state patterns. */
  budget: number | null;
  /** What each sized kind's knob was set to, for the table. */
  matches: BudgetMatch[];
  mixerOptions: MixerOptions;
  seed: number;
  phase: 'lr-search' | 'test';
  lr?: number;
  /** Ablation cells: the variant name (its rows' mixers are `<mixers>[<variant>]`). */
  variant?: string;
  /**
   * Test-time capacity cells: the factor applied to every OVQ layer's capacity at evaluation.
   * They belong to the default pattern's group (its lr search, its trained model).
   */
  evalCapacity?: number;
  /** Test-time β cells: the factor applied to every OVQ layer's β at evaluation (as above). */
  evalBetaScale?: number;
  /** Test-time novelty-spawn cells: the spawnDistance every OVQ layer uses at evaluation. */
  evalSpawnDistance?: number;
};

/** Whether a cell scores another cell's trained model with a test-time change (no training). */
export function isTestTimeCell(
  cell: Pick<RegimeCell, 'evalCapacity' | 'evalBetaScale' | 'evalSpawnDistance'>,
): boolean {
  return (
    cell.evalCapacity !== undefined ||
    cell.evalBetaScale !== undefined ||
    cell.evalSpawnDistance !== undefined
  );
}

/** The `mixers` field of a cell's rows: the pattern, with the ablation variant in brackets. */
export function rowMixers(cell: Pick<RegimeCell, 'mixers' | 'variant'>): string {
  return cell.variant ? `${cell.mixers}[${cell.variant}]` : cell.mixers;
}

/** The name of test-time capacity factor `f` (as it appears in ids and rows). */
export const capacityVariant = (f: number) => `capacity×${f}`;
/** The name of test-time β factor `f` (as it appears in ids and rows). */
export const betaScaleVariant = (f: number) => `β×${f}`;
/** The variant name of a test-time novelty-spawn cell. */
export const spawnDistanceVariant = (d: number) => `novelty>${d}`;

const SIZED: readonly MixerKind[] = ['ovq', 'kvm', 'vq'];

/** The long-range kinds of a pattern: everything but SWA, or SWA itself for "swa" alone. */
function longRangeKinds(pattern: string, layers: number): MixerKind[] {
  const kinds = [...new Set(mixerSchedule(pattern, layers))];
  const other = kinds.filter((k) => k !== 'swa');
  return other.length > 0 ? other : ['swa'];
}

/** Options and budget matches for `pattern` at `budget`; null budget when nothing is sized. */
export function budgetOptions(
  config: RegimeConfig,
  pattern: string,
  budget: number,
): { budget: number | null; options: MixerOptions; matches: BudgetMatch[] } {
  const { heads, dModel, layers, window, chunkSize } = config.model;
  const shape = { heads, headDim: dModel / heads, chunkSize, window };
  const base: MixerOptions = { ...config.model.mixerOptions, window, ovqChunkSize: chunkSize };
  const kinds = longRangeKinds(pattern, layers);
  const sized = kinds.filter((k) => SIZED.includes(k) || (k === 'swa' && kinds.length === 1));
  if (sized.length === 0)
    return {
      budget: null,
      options: base,
      matches: kinds.map((k) => matchBudget(k, budget, shape, base)),
    };
  const options: MixerOptions = { ...base };
  const matches = sized.map((k) => matchBudget(k, budget, shape, base));
  for (const m of matches) if (m.knob) (options as Record<string, number>)[m.knob] = m.value!;
  return { budget, options, matches };
}

/** Mixer options the plan derives from the model shape and the budgets. */
const PLAN_OWNED_OPTIONS = [
  'window',
  'ovqChunkSize',
  'ovqCapacity',
  'kvmBudget',
  'vqCodes',
] as const;

export function validateRegimeConfig(config: RegimeConfig): void {
  const fail = (what: string): never => {
    throw new Error(`regime config: ${what}`);
  };
  if (config.schema !== 'ovq-regime/1')
    fail(`schema is ${JSON.stringify(config.schema)}; expected "ovq-regime/1"`);
  const positiveInt = (name: string, x: unknown) => {
    if (!Number.isInteger(x) || (x as number) < 1)
      fail(`${name} is ${JSON.stringify(x)}; expected a positive integer`);
  };
  for (const key of [
    'trainLen',
    'batchSize',
    'steps',
    'validationSequences',
    'testSequences',
    'evalBatchSize',
  ] as const)
    positiveInt(key, config[key]);
  for (const key of ['dModel', 'heads', 'layers', 'window', 'chunkSize'] as const)
    positiveInt(`model.${key}`, config.model?.[key]);
  if (config.model.dModel % config.model.heads !== 0)
    fail(
      `model.dModel ${config.model.dModel} is not a multiple of model.heads ${config.model.heads}`,
    );
  const extra = config.model.mixerOptions;
  if (extra !== undefined) {
    if (typeof extra !== 'object' || extra === null || Array.isArray(extra))
      fail(`model.mixerOptions is ${JSON.stringify(extra)}; expected an object of mixer options`);
    for (const key of PLAN_OWNED_OPTIONS)
      if (key in extra)
        fail(
          `model.mixerOptions.${key} is set; the plan sets it (use model.window, model.chunkSize or budgets)`,
        );
  }
  for (const key of ['evalMultiples', 'tasks', 'mixers', 'budgets', 'seeds', 'lrs'] as const)
    if (!Array.isArray(config[key]) || config[key].length === 0)
      fail(`${key}: expected a non-empty array`);
  for (const pattern of config.mixers) {
    try {
      mixerSchedule(pattern, config.model.layers);
    } catch (e) {
      fail(`mixers: ${(e as Error).message} (choose from ${MIXER_KINDS.join(', ')})`);
    }
  }
  config.tasks.forEach((task, i) => {
    if (!('evalMultiples' in task) || task.evalMultiples === undefined) return;
    const m = task.evalMultiples;
    if (!Array.isArray(m) || m.length === 0 || !m.every((x) => Number.isInteger(x) && x >= 1))
      fail(
        `tasks[${i}].evalMultiples is ${JSON.stringify(m)}; expected a non-empty array of positive integers`,
      );
  });
  if (config.ablations !== undefined) validateAblations(config, fail);
  config.lrs.forEach((lr, i) => {
    if (!(lr > 0 && Number.isFinite(lr))) fail(`lrs[${i}] is ${lr}; expected a positive number`);
  });
  config.budgets.forEach((b, i) => {
    if (!(b > 0 && Number.isFinite(b))) fail(`budgets[${i}] is ${b}; expected a positive number`);
  });
  config.seeds.forEach((s, i) => {
    if (!Number.isInteger(s) || s < 0) fail(`seeds[${i}] is ${s}; expected a non-negative integer`);
  });
  // Checked last, once the budgets are known to be positive numbers.
  // A sized pattern may be too big for the smaller budgets (it is then left out of them, see
  // unfitBudgets), but a pattern that fits no budget at all is a mistake in the config.
  for (const pattern of config.mixers) {
    const unfit = config.budgets.map((b) => fitError(config, pattern, b));
    if (unfit.every((e) => e !== undefined))
      fail(`mixers: "${pattern}" fits none of the budgets (${unfit[0]})`);
  }
}

function validateAblations(config: RegimeConfig, fail: (what: string) => never): void {
  const a = config.ablations!;
  if (typeof a !== 'object' || a === null) fail('ablations: expected an object');
  const fields = [
    'mixers',
    'tasks',
    'budgets',
    'variants',
    'seeds',
    'evalCapacity',
    'evalBetaScale',
    'evalSpawnDistance',
  ];
  const unknownField = Object.keys(a).find((k) => !fields.includes(k));
  if (unknownField !== undefined)
    fail(`ablations: unknown field ${unknownField} (expected ${fields.join(', ')})`);
  const pattern = a.mixers ?? 'swa,ovq';
  let kinds: string[] = [];
  try {
    kinds = mixerSchedule(pattern, config.model.layers);
  } catch (e) {
    fail(`ablations.mixers: ${(e as Error).message}`);
  }
  if (!kinds.includes('ovq'))
    fail(`ablations.mixers is "${pattern}"; expected a pattern with an ovq layer`);
  // Variants are compared with, and test-time capacity scores, the default pattern's own runs.
  if (!config.mixers.includes(pattern))
    fail(`ablations.mixers "${pattern}" is not in mixers (${config.mixers.join(', ')})`);
  const taskNames = config.tasks.map((t) => t.name);
  for (const t of a.tasks ?? [])
    if (!taskNames.includes(t))
      fail(`ablations.tasks: "${t}" is no task of this config (${taskNames.join(', ')})`);
  (a.budgets ?? []).forEach((b, i) => {
    if (!config.budgets.includes(b))
      fail(
        `ablations.budgets[${i}] is ${b}; expected one of budgets (${config.budgets.join(', ')})`,
      );
  });
  const names = new Set<string>();
  (a.variants ?? []).forEach((v, i) => {
    if (typeof v?.name !== 'string' || !/^[A-Za-z0-9=.,_+-]+$/.test(v.name))
      fail(
        `ablations.variants[${i}].name is ${JSON.stringify(v?.name)}; expected letters, digits and = . , _ + -`,
      );
    if (names.has(v.name)) fail(`ablations.variants[${i}].name "${v.name}" is used twice`);
    names.add(v.name);
    const unknown = Object.keys(v).filter(
      (k) => !['name', 'growth', 'spawn', 'update', 'spawnDistance'].includes(k),
    );
    if (unknown.length)
      fail(
        `ablations.variants[${i}]: unknown field ${unknown[0]} (expected growth, spawn, update, spawnDistance)`,
      );
    try {
      // @ovq/core checks the axes exactly as the layer will.
      resolveOvqConfig({
        chunkSize: 1,
        capacity: 1,
        beta: 1,
        growth: v.growth,
        spawn: v.spawn,
        update: v.update,
        spawnDistance: v.spawnDistance,
      });
    } catch (e) {
      fail(`ablations.variants[${i}] (${v.name}): ${(e as Error).message}`);
    }
  });
  if (a.seeds !== undefined) {
    if (!Array.isArray(a.seeds) || a.seeds.length === 0)
      fail(`ablations.seeds is ${JSON.stringify(a.seeds)}; expected a non-empty array of seeds`);
    a.seeds.forEach((s, i) => {
      if (!Number.isInteger(s) || s < 0)
        fail(`ablations.seeds[${i}] is ${JSON.stringify(s)}; expected a non-negative integer`);
      // A variant is compared with the default pattern on its own seeds, so they must be trained.
      if (!config.seeds.includes(s))
        fail(`ablations.seeds[${i}] is ${s}; expected one of seeds (${config.seeds.join(', ')})`);
    });
    if (new Set(a.seeds).size !== a.seeds.length)
      fail(`ablations.seeds is ${JSON.stringify(a.seeds)}; expected each seed once`);
  }
  (a.evalSpawnDistance ?? []).forEach((d, i) => {
    if (!(d > 0 && Number.isFinite(d)))
      fail(
        `ablations.evalSpawnDistance[${i}] is ${d}; expected a squared key distance > 0 (the useful range is up to 4)`,
      );
  });
  for (const [field, trained] of [
    ['evalCapacity', 'N'],
    ['evalBetaScale', 'β'],
  ] as const)
    (a[field] ?? []).forEach((f, i) => {
      if (!(f > 0 && Number.isFinite(f)))
        fail(
          `ablations.${field}[${i}] is ${f}; expected a positive factor of the trained ${trained}`,
        );
    });
}

/** Why `pattern` cannot run at `budget` (its fixed part is over it), or undefined if it can. */
function fitError(config: RegimeConfig, pattern: string, budget: number): string | undefined {
  try {
    budgetOptions(config, pattern, budget);
    return undefined;
  } catch (e) {
    if (e instanceof BudgetTooSmallError) return e.message;
    throw e;
  }
}

/**
 * The (pattern, budget) pairs the plan leaves out because the pattern's fixed part alone is over
 * the budget (e.g. Transformer-VQ's two raw blocks), each with the reason; sweeps print them.
 */
export function unfitBudgets(
  config: RegimeConfig,
): { mixers: string; budget: number; reason: string }[] {
  const out: { mixers: string; budget: number; reason: string }[] = [];
  for (const pattern of config.mixers)
    for (const budget of config.budgets) {
      const reason = fitError(config, pattern, budget);
      if (reason !== undefined) out.push({ mixers: pattern, budget, reason });
    }
  return out;
}

/** A group's cells: its lr search (a cell per rate, on the first seed), then a test cell per seed. */
function groupCells(
  config: RegimeConfig,
  group: Omit<RegimeCell, 'id' | 'seed' | 'phase' | 'lr'>,
  seeds: number[],
): RegimeCell[] {
  return [
    ...config.lrs.map((lr) => ({
      ...group,
      id: `${group.group}/lr=${lr}`,
      seed: config.seeds[0],
      phase: 'lr-search' as const,
      lr,
    })),
    ...seeds.map((seed) => ({
      ...group,
      id: `${group.group}/seed=${seed}`,
      seed,
      phase: 'test' as const,
    })),
  ];
}

/**
 * The ablation cells: trained variants (own lr search and seeds), then test-time capacity, β and
 * novelty spawn.
 */
function ablationCells(config: RegimeConfig): RegimeCell[] {
  const a = config.ablations;
  if (!a) return [];
  const pattern = a.mixers ?? 'swa,ovq';
  const tasks = config.tasks.filter((t) => !a.tasks || a.tasks.includes(t.name));
  const cells: RegimeCell[] = [];
  for (const task of tasks) {
    for (const budget of a.budgets ?? config.budgets) {
      const b = budgetOptions(config, pattern, budget);
      const base = `${task.name}/${pattern}/${b.budget ?? 'natural'}`;
      const shared = { task, mixers: pattern, budget: b.budget, matches: b.matches };
      for (const v of a.variants ?? []) {
        const group = `${task.name}/${rowMixers({ mixers: pattern, variant: v.name })}/${b.budget ?? 'natural'}`;
        const mixerOptions: MixerOptions = {
          ...b.options,
          ...(v.growth === undefined ? {} : { ovqGrowth: v.growth }),
          ...(v.spawn === undefined ? {} : { ovqSpawn: v.spawn }),
          ...(v.update === undefined ? {} : { ovqUpdate: v.update }),
          ...(v.spawnDistance === undefined ? {} : { ovqSpawnDistance: v.spawnDistance }),
        };
        const cell = { ...shared, group, mixerOptions, variant: v.name };
        cells.push(...groupCells(config, cell, a.seeds ?? config.seeds));
      }
      const testTime = [
        ...(a.evalCapacity ?? []).map((f) => ({
          variant: capacityVariant(f),
          change: { evalCapacity: f },
        })),
        ...(a.evalBetaScale ?? []).map((f) => ({
          variant: betaScaleVariant(f),
          change: { evalBetaScale: f },
        })),
        ...(a.evalSpawnDistance ?? []).map((d) => ({
          variant: spawnDistanceVariant(d),
          change: { evalSpawnDistance: d },
        })),
      ];
      for (const { variant, change } of testTime) {
        const label = rowMixers({ mixers: pattern, variant });
        for (const seed of config.seeds)
          cells.push({
            ...shared,
            // The default pattern's group: its lr search picks the rate, its model is scored.
            group: base,
            mixerOptions: b.options,
            variant,
            ...change,
            id: `${task.name}/${label}/${b.budget ?? 'natural'}/seed=${seed}`,
            seed,
            phase: 'test',
          });
      }
    }
  }
  return cells;
}

/**
 * Every cell of the plan, lr-search cells first (they decide the test cells' rate). A pattern
 * that no budget sizes (fixed-state or full softmax) runs once, with budget null; a budget too
 * small for a pattern's fixed part is skipped (unfitBudgets lists those). The ablation cells
 * (config.ablations) come last.
 */
export function planCells(config: RegimeConfig): RegimeCell[] {
  validateRegimeConfig(config);
  const cells: RegimeCell[] = [];
  for (const task of config.tasks) {
    for (const pattern of config.mixers) {
      const seen = new Set<string>();
      for (const budget of config.budgets) {
        if (fitError(config, pattern, budget) !== undefined) continue; // see unfitBudgets
        const b = budgetOptions(config, pattern, budget);
        const key = JSON.stringify(b.options);
        if (seen.has(key)) continue;
        seen.add(key);
        const base = `${task.name}/${pattern}/${b.budget ?? 'natural'}`;
        const group = {
          group: base,
          task,
          mixers: pattern,
          budget: b.budget,
          matches: b.matches,
          mixerOptions: b.options,
        };
        cells.push(...groupCells(config, group, config.seeds));
      }
    }
  }
  cells.push(...ablationCells(config));
  return cells;
}

/**
 * Cells of shard `index` of `count`: whole groups round robin, so a group's test cells always
 * find its lr search done by the same process.
 */
export function shardCells(cells: RegimeCell[], index: number, count: number): RegimeCell[] {
  if (
    !Number.isInteger(count) ||
    count < 1 ||
    !Number.isInteger(index) ||
    index < 0 ||
    index >= count
  )
    throw new RangeError(`shard is ${index}/${count}; expected i/n with 0 ≤ i < n`);
  const groups = [...new Set(cells.map((c) => c.group))];
  const mine = new Set(groups.filter((_, i) => i % count === index));
  return cells.filter((c) => mine.has(c.group));
}
