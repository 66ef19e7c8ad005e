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
import {
  checkArray,
  checkBoolean,
  checkDims,
  checkInteger,
  checkLength,
  checkPositive,
  checkResolvedConfig,
  checkState,
  checkTokens,
  deserializing,
  fail,
  type MixerSpec,
  readConfig,
} from '../validate.js';

/** A sequence plus the fixed codebook of key codes, row-major [codebookSize, keyDim]. */
export type VqSeq = SeqInput & { codebook: FloatArray };

export type VqConfig = {
  /** Number of key codes S (the codebook is an input of this many rows). */
  codebookSize: number;
  /** Block length L: a query reads its own block and the previous one exactly. Default 64. */
  blockLength?: number;
  /** Logit scale β; default 1/√keyDim. */
  beta?: number;
  /**
   * Gradient path only (the output is the same): when true, a cache row's logit gradient also
   * reaches the keys it holds, an equal share each (the row's key is read as
   * c_j + mean_s k_s − sg(mean_s k_s)), so a key older than the previous block still learns from
   * the queries that read its row. Default false: the paper's path, where cached keys get no
   * attention gradient. Not part of a state's config.
   */
  cacheKeyGradient?: boolean;
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

/** Validates a VqConfig (required: it carries codebookSize) and fills in the defaults. */
export function resolveVqConfig(
  config: VqConfig | undefined,
  keyDim: number,
  argument = 'config',
): ResolvedVqConfig {
  checkInteger('keyDim', keyDim, 1);
  const c = readConfig(
    argument,
    config,
    ['codebookSize', 'blockLength', 'beta', 'cacheKeyGradient'],
    true,
  );
  if (c.cacheKeyGradient !== undefined)
    checkBoolean(`${argument}.cacheKeyGradient`, c.cacheKeyGradient);
  const codebookSize = checkInteger(`${argument}.codebookSize`, c.codebookSize, 1);
  checkLength(`${argument}.codebookSize`, codebookSize * keyDim, 'codebookSize·keyDim');
  return {
    codebookSize,
    blockLength:
      c.blockLength === undefined ? 64 : checkInteger(`${argument}.blockLength`, c.blockLength, 1),
    beta: c.beta === undefined ? 1 / Math.sqrt(keyDim) : checkPositive(`${argument}.beta`, c.beta),
  };
}

function emptyVqState(dims: Dims, c: ResolvedVqConfig): VqState {
  const { keyDim, valueDim } = dims;
  checkLength('config.codebookSize', c.codebookSize * valueDim, 'codebookSize·valueDim');
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

export function createVqState(dims: Dims, config: VqConfig): VqState {
  const d = checkDims(dims);
  return emptyVqState(d, resolveVqConfig(config, d.keyDim));
}

export function checkVqState(state: unknown, argument: string): Dims {
  const dims = checkVqStateShape(state, argument);
  const s = state as VqState;
  const c = resolveVqConfig(s.config, dims.keyDim, `${argument}.config`);
  checkResolvedConfig(`${argument}.config`, s.config, c);
  const recent = recentCount(s.position, c.blockLength);
  if (s.recentLength !== recent) {
    fail(`${argument}.recentLength`, s.recentLength, `${recent} at position ${s.position}`);
  }
  let cached = 0;
  for (const n of s.counts) {
    if (!Number.isInteger(n) || n < 0) fail(`${argument}.counts`, n, 'integers ≥ 0', `holds ${n}`);
    cached += n;
  }
  if (cached !== s.position - recent) {
    fail(
      `${argument}.counts`,
      cached,
      `position − recentLength = ${s.position - recent}`,
      `sum to ${cached}`,
    );
  }
  for (const z of s.recentCodes) {
    if (!Number.isInteger(z) || z < 0 || z >= c.codebookSize) {
      fail(`${argument}.recentCodes`, z, `integers in [0, ${c.codebookSize})`, `holds ${z}`);
    }
  }
  return dims;
}

function checkVqStateShape(state: unknown, argument: string): Dims {
  return checkState(state, 'vq', argument, ['recentLength'], (n) => {
    const S = checkInteger(
      `${argument}.config.codebookSize`,
      (state as VqState).config.codebookSize,
      1,
    );
    return {
      counts: S,
      valueSums: S * n.valueDim,
      recentCodes: n.recentLength,
      recentValues: n.recentLength * n.valueDim,
    };
  });
}

export const vqSpec: MixerSpec<VqState, ResolvedVqConfig> = {
  mixer: 'vq',
  checkState: checkVqState,
  resolve: (config, keyDim) => resolveVqConfig(config as VqConfig, keyDim),
  checkExtras: (seq, c, float32) => {
    const n = c.codebookSize * (seq.keyDim as number);
    checkArray('seq.codebook', seq.codebook, n, 'codebookSize*keyDim', float32);
  },
  empty: emptyVqState,
};

/** ALGORITHM.md §6: S·(dk + dv + 1) codebook cache plus up to 2 blocks of raw keys and values. */
export function vqStateSize(dims: Dims, config: VqConfig, T: number): number {
  const d = checkDims(dims);
  const c = resolveVqConfig(config, d.keyDim);
  const n = checkTokens(T);
  return (
    c.codebookSize * (d.keyDim + d.valueDim + 1) +
    Math.min(n, 2 * c.blockLength) * (d.keyDim + d.valueDim)
  );
}

/** How many of the last tokens stay raw at stream position P: those in blocks ≥ ⌊(P−1)/L⌋ − 1. */
export function recentCount(position: number, blockLength: number): number {
  if (position === 0) return 0;
  const firstRaw = Math.max(0, (Math.floor((position - 1) / blockLength) - 1) * blockLength);
  return position - firstRaw;
}

export function serializeVqState(state: VqState): string {
  checkVqState(state, 'state');
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
  return deserializing(() => readVqState(text));
}

function readVqState(text: string): VqState {
  const b = parseStateEnvelope(text, 'vq');
  const keyDim = checkInteger('text.keyDim', b.keyDim, 1);
  const valueDim = checkInteger('text.valueDim', b.valueDim, 1);
  const config = resolveVqConfig(b.config as VqConfig, keyDim, 'text.config');
  const position = checkInteger('text.position', b.position, 0);
  const recentLength = checkInteger('text.recentLength', b.recentLength, 0);
  const expectedRecent = recentCount(position, config.blockLength);
  if (recentLength !== expectedRecent) {
    fail('text.recentLength', recentLength, `${expectedRecent} at position ${position}`);
  }
  const recentCodes = readNumbers(b, 'recentCodes', recentLength);
  for (const z of recentCodes) {
    if (!Number.isInteger(z) || z < 0 || z >= config.codebookSize) {
      fail('text.recentCodes', z, `integers in [0, ${config.codebookSize})`, `holds ${z}`);
    }
  }
  const counts = readNumbers(b, 'counts', config.codebookSize);
  let cached = 0;
  for (const n of counts) {
    if (!Number.isInteger(n) || n < 0) fail('text.counts', n, 'integers ≥ 0', `holds ${n}`);
    cached += n;
  }
  if (cached !== position - recentLength) {
    fail(
      'text.counts',
      cached,
      `position − recentLength = ${position - recentLength}`,
      `sum to ${cached}`,
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
