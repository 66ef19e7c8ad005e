// Matched state budgets (ALGORITHM.md §6): the size knob of each mixer (OVQ capacity, KVM row
// budget, VQ codes, SWA window) chosen so that one layer holds at most `budget` numbers per
// sequence at any length. The fixed-state mixers (linear, decay, GDN) have no knob here: they
// run at their natural size dk·dv per head, which the result states.
import { stateSize } from '@ovq/baselines';
import type { MixerOptions } from '../model/decoder.js';
import type { MixerKind } from '../model/mixers.js';

export type LayerShape = { heads: number; headDim: number; chunkSize: number; window: number };

/** Long enough that every growth schedule has reached its ceiling. */
const CEILING_T = 1e9;

/**
 * Numbers one layer of `kind` holds per sequence at its largest (the ceiling over all lengths),
 * with the tfjs mixers' meaning of the options (see model/tfjs-mixers.ts).
 */
export function layerStateCeiling(
  kind: MixerKind,
  options: MixerOptions,
  shape: LayerShape,
): number {
  const { heads, headDim: d, chunkSize: C } = shape;
  const dims = { keyDim: d, valueDim: d };
  const window = options.window ?? shape.window;
  const capacity = options.ovqCapacity ?? 64;
  let perHead: number;
  switch (kind) {
    case 'swa':
      perHead = stateSize('softmax', dims, { window }, CEILING_T);
      break;
    case 'softmax':
      return Number.POSITIVE_INFINITY;
    case 'ovq':
      perHead = capacity * (2 * d + 1) + C * 2 * d;
      break;
    case 'linear':
      perHead = stateSize('linear', dims, undefined, CEILING_T);
      break;
    case 'decay':
      perHead = stateSize('decay-linear', dims, undefined, CEILING_T);
      break;
    case 'gdn':
      perHead = stateSize('gated-deltanet', dims, undefined, CEILING_T);
      break;
    case 'vq':
      perHead = stateSize(
        'vq',
        dims,
        { codebookSize: options.vqCodes ?? capacity, blockLength: C },
        CEILING_T,
      );
      break;
    case 'kvm':
      // Saturating budget R·τ/(R+τ) tends to R rows; plus the raw window (no sinks here).
      perHead = (options.kvmBudget ?? capacity) * (2 * d + 1) + window * 2 * d;
      break;
  }
  return heads * perHead;
}

/** The option that sizes `kind`, or undefined for mixers whose size is fixed by their dims. */
export function budgetKnob(kind: MixerKind): keyof MixerOptions | undefined {
  switch (kind) {
    case 'ovq':
      return 'ovqCapacity';
    case 'kvm':
      return 'kvmBudget';
    case 'vq':
      return 'vqCodes';
    case 'swa':
      return 'window';
    default:
      return undefined;
  }
}

/** A sized mixer whose fixed part alone (raw window, chunk or blocks) is over the budget. */
export class BudgetTooSmallError extends RangeError {
  override name = 'BudgetTooSmallError';
}

export type BudgetMatch = {
  kind: MixerKind;
  /** The knob and its value (absent for fixed-state and unbounded mixers). */
  knob?: keyof MixerOptions;
  value?: number;
  /** Numbers the layer holds at its ceiling with that value (≤ budget for sized mixers). */
  stateNumbers: number;
};

/**
 * The largest knob value whose layer ceiling fits in `budget` numbers. SWA's window is kept a
 * multiple of `step` (KVM's blocks move by whole windows); other knobs are whole rows.
 */
export function matchBudget(
  kind: MixerKind,
  budget: number,
  shape: LayerShape,
  base: MixerOptions = {},
): BudgetMatch {
  if (!(Number.isFinite(budget) && budget > 0))
    throw new RangeError(`budget is ${budget}; expected a positive number of state numbers`);
  const knob = budgetKnob(kind);
  if (knob === undefined) {
    return { kind, stateNumbers: layerStateCeiling(kind, base, shape) };
  }
  const fits = (value: number) =>
    layerStateCeiling(kind, { ...base, [knob]: value }, shape) <= budget;
  if (!fits(1))
    throw new BudgetTooSmallError(
      `budget ${budget} cannot hold one ${knob} row of ${kind} (heads ${shape.heads}, head dim ${shape.headDim}, chunk ${shape.chunkSize}, window ${shape.window})`,
    );
  let lo = 1;
  let hi = 2;
  while (fits(hi)) {
    lo = hi;
    hi *= 2;
  }
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (fits(mid)) lo = mid;
    else hi = mid;
  }
  return {
    kind,
    knob,
    value: lo,
    stateNumbers: layerStateCeiling(kind, { ...base, [knob]: lo }, shape),
  };
}
