// Transformer-VQ attention (Lingle 2023): config, block-wise state (per-code cache + raw recent
// blocks), serialisation and state size.
import {
  type Dims,
  type FloatArray,
  parseStateEnvelope,
  readNumbers,
  type SeqInput,
  serializeFields,
} from '../common.js';
import { checkArray, checkInteger, checkPositive, checkSeq, inputError } from '../validate.js';

/** A sequence plus the fixed codebook of key codes, row-major [codebookSize, keyDim]. */
export type VqSeq = SeqInput & { codebook: FloatArray };

export type VqConfig = {
  /** Number of key codes S (the codebook is an input of this many rows). */
  codebookSize: number;
  /** Block length L: a query reads its own block and the previous one exactly. Default 64. */
  blockLength?: number;
  /** Logit scale β; default 1/√keyDim. */
  beta?: number;
};

export type ResolvedVqConfig = { codebookSize: number; blockLength: number; beta: number };

export type VqState = {
  mixer: 'vq';
  keyDim: number;
  valueDim: number;
  config: ResolvedVqConfig;
  /** Tokens seen so far. */
  position: number;
  /** Tokens older than the previous block, aggregated: count n_s and value sum per code. */
  counts: Float64Array;
  valueSums: Float64Array;
  /** The last `recentLength` tokens (previous and current block) kept raw: code index and value. */
  recentLength: number;
  recentCodes: Float64Array;
  recentValues: Float64Array;
};

export function resolveVqConfig(config: VqConfig | undefined, keyDim: number): ResolvedVqConfig {
  if (config === undefined)
    inputError('config is undefined; expected { codebookSize, blockLength?, beta? }');
  return {
    codebookSize: checkInteger('config.codebookSize', config.codebookSize, 1),
    blockLength:
      config.blockLength === undefined
        ? 64
        : checkInteger('config.blockLength', config.blockLength, 1),
    beta:
      config.beta === undefined ? 1 / Math.sqrt(keyDim) : checkPositive('config.beta', config.beta),
  };
}

export function checkVqSeq(seq: VqSeq, config: ResolvedVqConfig, dims?: Dims): void {
  checkSeq(seq, dims);
  const n = config.codebookSize * seq.keyDim;
  checkArray('codebook', seq.codebook, n, 'codebookSize*keyDim');
}

export function createVqState(dims: Dims, config: VqConfig): VqState {
  const keyDim = checkInteger('dims.keyDim', dims.keyDim, 1);
  const valueDim = checkInteger('dims.valueDim', dims.valueDim, 1);
  const c = resolveVqConfig(config, keyDim);
  return {
    mixer: 'vq',
    keyDim,
    valueDim,
    config: c,
    position: 0,
    counts: new Float64Array(c.codebookSize),
    valueSums: new Float64Array(c.codebookSize * valueDim),
    recentLength: 0,
    recentCodes: new Float64Array(0),
    recentValues: new Float64Array(0),
  };
}

/** ALGORITHM.md §6: S·(dk + dv + 1) codebook cache plus up to 2 blocks of raw keys and values. */
export function vqStateSize(dims: Dims, config: VqConfig, T: number): number {
  const c = resolveVqConfig(config, dims.keyDim);
  return (
    c.codebookSize * (dims.keyDim + dims.valueDim + 1) +
    Math.min(T, 2 * c.blockLength) * (dims.keyDim + dims.valueDim)
  );
}

/** How many of the last tokens stay raw at stream position P: those in blocks ≥ ⌊(P−1)/L⌋ − 1. */
export function recentCount(position: number, blockLength: number): number {
  if (position === 0) return 0;
  const firstRaw = Math.max(0, (Math.floor((position - 1) / blockLength) - 1) * blockLength);
  return position - firstRaw;
}

export function serializeVqState(state: VqState): string {
  const {
    keyDim,
    valueDim,
    config,
    position,
    counts,
    valueSums,
    recentLength,
    recentCodes,
    recentValues,
  } = state;
  return serializeFields('vq', {
    keyDim,
    valueDim,
    config,
    position,
    counts,
    valueSums,
    recentLength,
    recentCodes,
    recentValues,
  });
}

export function deserializeVqState(text: string): VqState {
  const b = parseStateEnvelope(text, 'vq');
  const keyDim = checkInteger('state.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('state.valueDim', b.valueDim, 1);
  const config = resolveVqConfig(b.config as VqConfig, keyDim);
  const position = checkInteger('state.position', b.position, 0);
  const recentLength = checkInteger('state.recentLength', b.recentLength, 0);
  if (recentLength !== recentCount(position, config.blockLength)) {
    inputError(
      `state.recentLength is ${recentLength}; expected ${recentCount(position, config.blockLength)} at position ${position}`,
    );
  }
  const recentCodes = readNumbers(b, 'recentCodes', recentLength);
  for (const z of recentCodes) {
    if (!Number.isInteger(z) || z < 0 || z >= config.codebookSize) {
      inputError(`state.recentCodes has ${z}; expected integers in [0, ${config.codebookSize})`);
    }
  }
  const counts = readNumbers(b, 'counts', config.codebookSize);
  let cached = 0;
  for (const n of counts) {
    if (!Number.isInteger(n) || n < 0) inputError(`state.counts has ${n}; expected integers ≥ 0`);
    cached += n;
  }
  if (cached !== position - recentLength) {
    inputError(
      `state.counts sum to ${cached}; expected position − recentLength = ${position - recentLength}`,
    );
  }
  return {
    mixer: 'vq',
    keyDim,
    valueDim,
    config,
    position,
    counts,
    valueSums: readNumbers(b, 'valueSums', config.codebookSize * valueDim),
    recentLength,
    recentCodes,
    recentValues: readNumbers(b, 'recentValues', recentLength * valueDim),
  };
}

/** Nearest code: argmin_j ‖k − c_j‖² (ties: lowest j), distances summed in float64 in one order. */
export function nearestCode(
  k: FloatArray,
  ko: number,
  codebook: FloatArray,
  S: number,
  dk: number,
): number {
  let best = 0;
  let bestDist = Number.POSITIVE_INFINITY;
  for (let j = 0; j < S; j++) {
    let d = 0;
    for (let i = 0; i < dk; i++) {
      const x = k[ko + i] - codebook[j * dk + i];
      d += x * x;
    }
    if (d < bestDist) {
      bestDist = d;
      best = j;
    }
  }
  return best;
}
