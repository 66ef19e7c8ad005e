// How Transformer-VQ learns its codebook (Lingle 2023, following VQ-VAE's EMA variant): not by
// the attention gradient but by an exponential moving average of k-means statistics of the keys,
// plus a commitment loss β‖k − sg(c_z)‖² that pulls each key towards its code. Float64 references:
// the @ovq/tfjs layer's float32 update and loss are tested against these.
import type { FloatArray } from '../common.js';
import { checkArray, checkInteger, checkLength, fail } from '../validate.js';
import { nearestCode } from './state.js';

/** EMA k-means statistics of one codebook: per code a running size n_j and key sum m_j. */
export type VqCodebookStats = {
  codebookSize: number;
  keyDim: number;
  /** Running cluster sizes n_j [codebookSize] (≥ 0). */
  counts: Float64Array;
  /** Running key sums m_j, row-major [codebookSize, keyDim]. */
  sums: Float64Array;
};

export type VqEmaOptions = {
  /** EMA decay γ of the statistics; default 0.99 (the paper's). */
  decay?: number;
  /** Laplace smoothing ε of the cluster sizes; default 1e-5. */
  epsilon?: number;
};

/** Paper defaults: γ = 0.99 (EMA decay), β = 1e-4 (commitment weight); ε = 1e-5 (Laplace). */
export const VQ_EMA_DEFAULTS = { decay: 0.99, epsilon: 1e-5, commitment: 1e-4 } as const;

function resolveEma(options: VqEmaOptions | undefined): { decay: number; epsilon: number } {
  const decay = options?.decay ?? VQ_EMA_DEFAULTS.decay;
  const epsilon = options?.epsilon ?? VQ_EMA_DEFAULTS.epsilon;
  if (typeof decay !== 'number' || !(decay >= 0 && decay < 1))
    fail('options.decay', decay, 'a number in [0, 1)');
  if (typeof epsilon !== 'number' || !(epsilon > 0 && Number.isFinite(epsilon)))
    fail('options.epsilon', epsilon, 'a finite number > 0');
  return { decay, epsilon };
}

function checkStats(stats: VqCodebookStats, argument: string): { S: number; dk: number } {
  const S = checkInteger(`${argument}.codebookSize`, stats?.codebookSize, 1);
  const dk = checkInteger(`${argument}.keyDim`, stats.keyDim, 1);
  checkLength(`${argument}.codebookSize`, S * dk, 'codebookSize·keyDim');
  checkArray(`${argument}.counts`, stats.counts, S, 'codebookSize');
  checkArray(`${argument}.sums`, stats.sums, S * dk, 'codebookSize·keyDim');
  for (const n of stats.counts) {
    if (n < 0) fail(`${argument}.counts`, n, 'values ≥ 0', `holds ${n}`);
  }
  return { S, dk };
}

/**
 * The codebook the statistics stand for: c_j = m_j / ñ_j with Laplace-smoothed sizes
 * ñ_j = (n_j + ε) / (N + S·ε) · N, N = Σ n_j (an unused code keeps a finite codeword).
 */
export function vqCodebookFromStats(stats: VqCodebookStats, epsilon?: number): Float64Array {
  const { S, dk } = checkStats(stats, 'stats');
  const eps = resolveEma({ epsilon }).epsilon;
  let total = 0;
  for (const n of stats.counts) total += n;
  if (!(total > 0)) fail('stats.counts', total, 'a positive total', `sum to ${total}`);
  const codebook = new Float64Array(S * dk);
  for (let j = 0; j < S; j++) {
    const smoothed = ((stats.counts[j] + eps) / (total + S * eps)) * total;
    for (let i = 0; i < dk; i++) codebook[j * dk + i] = stats.sums[j * dk + i] / smoothed;
  }
  return codebook;
}

/**
 * One EMA k-means step on a batch of keys [n, keyDim]: each key goes to its nearest code of the
 * current codebook (vqCodebookFromStats), then n_j ← γ n_j + (1 − γ)·|{t: z_t = j}| and
 * m_j ← γ m_j + (1 − γ)·Σ_{t: z_t = j} k_t. Returns the new statistics (the input is not changed).
 */
export function vqEmaUpdate(
  stats: VqCodebookStats,
  keys: FloatArray,
  options?: VqEmaOptions,
): VqCodebookStats {
  const { S, dk } = checkStats(stats, 'stats');
  const { decay, epsilon } = resolveEma(options);
  if (keys?.length % dk !== 0) fail('keys', keys, `a multiple of keyDim = ${dk} values`);
  checkArray('keys', keys, keys.length, 'n·keyDim');
  const codebook = vqCodebookFromStats(stats, epsilon);
  const batchCounts = new Float64Array(S);
  const batchSums = new Float64Array(S * dk);
  for (let t = 0; t < keys.length / dk; t++) {
    const z = nearestCode(keys, t * dk, codebook, S, dk);
    batchCounts[z] += 1;
    for (let i = 0; i < dk; i++) batchSums[z * dk + i] += keys[t * dk + i];
  }
  return {
    codebookSize: S,
    keyDim: dk,
    counts: stats.counts.map((n, j) => decay * n + (1 - decay) * batchCounts[j]),
    sums: stats.sums.map((m, x) => decay * m + (1 - decay) * batchSums[x]),
  };
}

/**
 * Commitment loss Σ_t ‖k_t − sg(c_{z_t})‖² of keys [n, keyDim] against a codebook [S, keyDim]
 * (z_t the nearest code), and its gradient 2(k_t − c_{z_t}) with respect to the keys. The
 * codebook gets no gradient (stop-gradient): it is learned by vqEmaUpdate.
 */
export function vqCommitmentLoss(
  keys: FloatArray,
  codebook: FloatArray,
  codebookSize: number,
  keyDim: number,
): { loss: number; dKeys: Float64Array; codes: Int32Array } {
  const S = checkInteger('codebookSize', codebookSize, 1);
  const dk = checkInteger('keyDim', keyDim, 1);
  checkArray('codebook', codebook, S * dk, 'codebookSize·keyDim');
  if (keys?.length % dk !== 0) fail('keys', keys, `a multiple of keyDim = ${dk} values`);
  checkArray('keys', keys, keys.length, 'n·keyDim');
  const n = keys.length / dk;
  const dKeys = new Float64Array(n * dk);
  const codes = new Int32Array(n);
  let loss = 0;
  for (let t = 0; t < n; t++) {
    const z = nearestCode(keys, t * dk, codebook, S, dk);
    codes[t] = z;
    for (let i = 0; i < dk; i++) {
      const d = keys[t * dk + i] - codebook[z * dk + i];
      loss += d * d;
      dKeys[t * dk + i] = 2 * d;
    }
  }
  return { loss, dKeys, codes };
}

/**
 * Dead-code restart (as EnCodec and SoundStream train their EMA codebooks; not in the
 * Transformer-VQ paper): every code whose running size n_j is under `threshold` restarts at the
 * key `keys[picks[j]]`, with n_j = threshold and m_j = threshold·k, so its codeword is that key.
 * Without it, Euclidean k-means on LayerNorm-ed keys (near-orthogonal in high dimension) can
 * collapse onto one central code that every key is nearest to. `picks` [codebookSize] are row
 * indices into keys [n, keyDim] (the caller picks them); codes at or over the threshold, and
 * every code when `threshold` is 0, are kept. Returns new statistics (the input is not changed).
 */
export function vqRestartDeadCodes(
  stats: VqCodebookStats,
  keys: FloatArray,
  threshold: number,
  picks: ArrayLike<number>,
): VqCodebookStats {
  const { S, dk } = checkStats(stats, 'stats');
  if (typeof threshold !== 'number' || !(threshold >= 0 && Number.isFinite(threshold)))
    fail('threshold', threshold, 'a finite number ≥ 0');
  if (keys?.length % dk !== 0 || keys.length === 0)
    fail('keys', keys, `a non-empty multiple of keyDim = ${dk} values`);
  checkArray('keys', keys, keys.length, 'n·keyDim');
  const n = keys.length / dk;
  if (picks?.length !== S) fail('picks', picks, `${S} row indices (one per code)`);
  const counts = Float64Array.from(stats.counts);
  const sums = Float64Array.from(stats.sums);
  for (let j = 0; j < S; j++) {
    if (!(counts[j] < threshold)) continue;
    const r = picks[j];
    if (!Number.isInteger(r) || r < 0 || r >= n)
      fail('picks', r, `integers in [0, ${n})`, `holds ${r} at code ${j}`);
    counts[j] = threshold;
    for (let i = 0; i < dk; i++) sums[j * dk + i] = threshold * keys[r * dk + i];
  }
  return { codebookSize: S, keyDim: dk, counts, sums };
}
