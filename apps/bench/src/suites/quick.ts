// `quick`: the subset that shows the three headline results in under 10 minutes on two cores —
// fast CPU paths forward at three lengths with the memory probe, the untrained recall comparison,
// and the OVQ ablations on one seed.
import { DEFAULT_RECALL_DEMO } from '../recall-demo.js';
import type { Implementation } from '../registry/types.js';
import { type AblateOptions, DEFAULT_ABLATE } from './ablate.js';
import { DEFAULT_SYNTHETIC_RECALL, type SyntheticRecallOptions } from './recall-synthetic.js';
import type { SpeedOptions } from './speed.js';

export const QUICK_SPEED: SpeedOptions = {
  Ts: [1024, 4096, 16384],
  modes: ['forward'],
  dims: { keyDim: 32, valueDim: 32 },
  warmup: 1,
  repeats: 3,
  budgetSeconds: 120,
  memoryTs: [1024, 4096, 16384],
  memoryPiece: 1024,
  webgpu: false,
  tfjs: 'dense',
};

export const QUICK_RECALL: SyntheticRecallOptions = {
  ...DEFAULT_SYNTHETIC_RECALL,
  seeds: [1, 2],
  ovqCapacities: [32, 64, 128, 256],
};

export const QUICK_ABLATE: AblateOptions = {
  ...DEFAULT_ABLATE,
  sequence: DEFAULT_RECALL_DEMO,
  seeds: [1],
};

/** Fast paths only; the OVQ reference only stands in when core has no chunked path yet. */
export function quickImplementations(all: Implementation[]): Implementation[] {
  const hasChunked = all.some((i) => i.name === 'ovq/core-chunked');
  return all.filter((i) =>
    i.mixer === 'ovq' ? i.name === (hasChunked ? 'ovq/core-chunked' : 'ovq/core-reference') : true,
  );
}
