// `quick`: the subset that shows the three headline results in a few minutes on two cores —
// fast CPU paths forward at four lengths with the memory probe, the matched-state recall sweep,
// and the OVQ ablations on one seed.
import { DEFAULT_RECALL_DEMO } from '../recall-demo.js';
import type { Implementation } from '../registry/types.js';
import { type AblateOptions, DEFAULT_ABLATE } from './ablate.js';
import { DEFAULT_SYNTHETIC_RECALL, type SyntheticRecallOptions } from './recall-synthetic.js';
import type { SpeedOptions } from './speed.js';

export const QUICK_SPEED: SpeedOptions = {
  // Four lengths: the time-scaling fit needs ≥ 4.
  Ts: [2048, 4096, 8192, 16384],
  modes: ['forward'],
  dims: { keyDim: 32, valueDim: 32 },
  warmup: 1,
  repeats: 5,
  budgetSeconds: 60,
  memoryTs: [4096, 16384],
  // One child process per probe: OVQ, the KV cache and two fixed-size states keep quick short.
  memoryImpls: [
    'ovq/core-chunked',
    'softmax/baselines-fast',
    'kvm/baselines-fast',
    'gated-deltanet/baselines-fast',
  ],
  memoryPiece: 1024,
  webgpu: false,
  tfjs: 'dense',
};

/** The matched-state sweep, smaller: two seeds per split, two βs, fewer sizes. */
export const QUICK_RECALL: SyntheticRecallOptions = {
  ...DEFAULT_SYNTHETIC_RECALL,
  validationSeeds: [1, 2],
  testSeeds: [101, 102],
  betas: [12, 24],
  ovqChunks: [16, 64],
  kvmWindows: [16, 64],
  vqCodes: [16, 64, 256],
  vqBlocks: [16],
  decays: [1, 0.998],
  gdnWriteStrengths: [1],
  featureDims: [32, 128, 512],
};

export const QUICK_ABLATE: AblateOptions = {
  ...DEFAULT_ABLATE,
  sequence: DEFAULT_RECALL_DEMO,
  // The fast path takes ~50 ms per run: five seeds give the findings an error bar.
  seeds: [1, 2, 3, 4, 5],
};

/** Fast paths only; the OVQ reference only stands in when core has no chunked path yet. */
export function quickImplementations(all: Implementation[]): Implementation[] {
  const hasChunked = all.some((i) => i.name === 'ovq/core-chunked');
  return all.filter((i) =>
    i.mixer === 'ovq' ? i.name === (hasChunked ? 'ovq/core-chunked' : 'ovq/core-reference') : true,
  );
}
