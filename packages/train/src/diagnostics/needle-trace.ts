// Where a NIAH needle goes in each OVQ head's dictionary, and how much of it the question reads.
// Each OVQ head is replayed with @ovq/core's float64 reference on the exact op inputs of the
// trained layer (`OvqAttention.headInputs`), so the row every token joined comes from the
// reference's trace rather than from a second implementation of the absorb.
import {
  createOvqState,
  normalizeRow,
  type OvqConfig,
  type OvqState,
  ovqAppend,
  ovqAttentionReference,
  readLogit,
  type Seq,
} from '@ovq/core';
import * as tf from '@tensorflow/tfjs-core';
import type { Decoder, ResidualPatch } from '../model/decoder.js';
import { swaWindow } from '../model/tfjs-mixers.js';
import type { NiahVocabulary } from '../tasks/niah.js';
import { IGNORE, type TokenBatch } from '../tasks/types.js';
import { echoCut } from './echo-cut.js';

/** One OVQ head of one sequence at its question. */
export type NeedleHeadTrace = {
  layer: number;
  head: number;
  /** Sequence index in the batch. */
  sequence: number;
  /** Needle span: its NEEDLE marker's position and length (marker, key and k values). */
  needleAt: number;
  needleTokens: number;
  /** Needle-span tokens that seeded a row of their own. */
  seeded: number;
  /** Needle-span tokens still in the pending buffer at the first scored position. */
  pending: number;
  /** Mean count, at the first scored position, of the rows holding the absorbed needle tokens (NaN if none). */
  rowCount: number;
  /** Dictionary rows at the first scored position. */
  rows: number;
  /**
   * Per scored position, averaged: softmax weight on the rows and pending slots that hold needle
   * tokens, and the needle's share of the read, Σᵢ wᵢ·(needle tokens in i)/cᵢ (a row's value is
   * the mean of its tokens' values, so this is the weight the needle's own values get).
   */
  readWeight: number;
  needleMass: number;
  /**
   * Why the read weighs the needle as it does against the filler, per scored position, averaged.
   * A slot's logit is β·sᵢ + ln cᵢ (sᵢ the query–key similarity, cᵢ its count). The rivals are
   * the dictionary rows that hold no needle token (the pending slots and the token itself are
   * left out: they hold the question, whose key token repeats the needle's). `similarityMargin`:
   * the closest needle slot's s minus the closest rival's (> 0: the query points at the needle
   * more than at any filler row). `similarityRank`: rivals closer to the query than every needle
   * slot. `priorMargin`: ln c of the needle slot with the largest logit minus ln c of the rival
   * with the largest logit. `needleKeyCosine`: the largest cosine between the key of the needle
   * slot closest to the query and any rival's key (near 1: no query tells them apart). NaN
   * (rank 0) where no rival exists.
   */
  beta: number;
  similarityMargin: number;
  similarityRank: number;
  priorMargin: number;
  needleKeyCosine: number;
  /**
   * Haystack tokens (outside the needle and before the question) whose key has a cosine above
   * KEY_TWIN_COSINE with the needle's key token's key, and how many of them lie within `window`
   * tokens after it: a layer below that mixes the needle into its successors (sliding-window
   * attention) gives them the needle's key, and OVQ files them as the needle. NaN when the trace
   * was not given the key token and question positions.
   */
  keyTwins: number;
  keyTwinsInWindow: number;
  /** The twins' share of the read, Σᵢ wᵢ·(twins in i)/cᵢ, averaged like `needleMass`; NaN as above. */
  twinMass: number;
  /**
   * How novel the needle's copies were when the dictionary took them (`absorbDistances`: squared
   * distance of a token's key to the nearest row at its absorb, keys as the op compares them).
   * `copyDistance`: median over the haystack tokens in the window after the needle's key token
   * (where a sliding-window layer below copies the needle). `fillerDistance` and
   * `fillerDistanceMax`: median and largest over the haystack tokens after that window and before
   * the question (the filler absorbed alongside the copies). NaN where no such token was absorbed
   * into a non-empty dictionary before the first scored position, or without the key token and
   * question positions. Novelty spawn with threshold λ (`spawnDistance`) gives a row to tokens
   * beyond λ, so these say which λ separates the copies from the filler.
   */
  copyDistance: number;
  fillerDistance: number;
  fillerDistanceMax: number;
  /** Fraction of this sequence's scored tokens the model predicts (argmax). */
  correct: number;
};

/**
 * The read's slots at token p given the state before p: dictionary rows, pending tokens, then
 * token p itself (ALGORITHM.md §4.2: p is appended to the pending buffer, then read). For each,
 * its key (as the op compares it), the query–key similarity s (the logit without β and the prior)
 * and ln count (0 for pending slots and p).
 */
export function readSlotsAt(state: OvqState, seq: Seq, p: number) {
  const { keyDim } = seq;
  const { read, normalize } = state.config;
  const gaussian = read === 'gaussian';
  // The query and token p's key as the op sees them (@ovq/core's own normalisation).
  const unit = (x: ArrayLike<number>) => {
    const row = new Float64Array(keyDim);
    if (normalize) normalizeRow(x, p * keyDim, keyDim, row, 0);
    else for (let d = 0; d < keyDim; d++) row[d] = x[p * keyDim + d];
    return row;
  };
  const q = unit(seq.q);
  const { size, pendingCount, counts, centroidKeys, pendingKeys } = state;
  const slots = size + pendingCount + 1;
  const keys: ArrayLike<number>[] = [];
  const similarity = new Float64Array(slots);
  const logCount = new Float64Array(slots);
  for (let i = 0; i < size; i++) keys.push(centroidKeys.subarray(i * keyDim, (i + 1) * keyDim));
  for (let s = 0; s < pendingCount; s++)
    keys.push(pendingKeys.subarray(s * keyDim, (s + 1) * keyDim));
  keys.push(unit(seq.k));
  keys.forEach((key, j) => {
    similarity[j] = readLogit(q, 0, key, 0, keyDim, 1, gaussian, 0);
  });
  for (let i = 0; i < size; i++) logCount[i] = Math.log(counts[i]);
  return { keys, similarity, logCount };
}

/** The softmax weights of the read at token p over `readSlotsAt`'s slots (same order). */
export function readWeightsAt(state: OvqState, seq: Seq, p: number): Float64Array {
  return slotWeights(readSlotsAt(state, seq, p), state.config.beta);
}

function slotWeights(slots: ReturnType<typeof readSlotsAt>, beta: number): Float64Array {
  const { similarity, logCount } = slots;
  const w = similarity.map((s, j) => beta * s + logCount[j]);
  // A loop, not Math.max(...w): a large dictionary would overflow the argument list.
  let max = Number.NEGATIVE_INFINITY;
  for (const x of w) if (x > max) max = x;
  let sum = 0;
  for (let i = 0; i < w.length; i++) sum += w[i] = Math.exp(w[i] - max);
  for (let i = 0; i < w.length; i++) w[i] /= sum;
  return w;
}

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let d = 0; d < a.length; d++) {
    ab += a[d] * b[d];
    aa += a[d] * a[d];
    bb += b[d] * b[d];
  }
  return aa > 0 && bb > 0 ? ab / Math.sqrt(aa * bb) : 0;
}

/** The `similarityMargin` … `needleKeyCosine` terms of NeedleHeadTrace at one position. */
function competition(
  slots: ReturnType<typeof readSlotsAt>,
  beta: number,
  needle: (j: number) => boolean,
  rival: (j: number) => boolean,
) {
  const { keys, similarity, logCount } = slots;
  const best = (among: (j: number) => boolean, score: (j: number) => number) => {
    let at = -1;
    for (let j = 0; j < keys.length; j++) if (among(j) && (at < 0 || score(j) > score(at))) at = j;
    return at;
  };
  const bySimilarity = (j: number) => similarity[j];
  const byLogit = (j: number) => beta * similarity[j] + logCount[j];
  const closestNeedle = best(needle, bySimilarity);
  const closestRival = best(rival, bySimilarity);
  if (closestRival < 0)
    return {
      similarityMargin: Number.NaN,
      similarityRank: 0,
      priorMargin: Number.NaN,
      needleKeyCosine: Number.NaN,
    };
  let rank = 0;
  let keyCosine = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < keys.length; j++) {
    if (!rival(j)) continue;
    if (similarity[j] > similarity[closestNeedle]) rank++;
    keyCosine = Math.max(keyCosine, cosine(keys[closestNeedle], keys[j]));
  }
  return {
    similarityMargin: similarity[closestNeedle] - similarity[closestRival],
    similarityRank: rank,
    priorMargin: logCount[best(needle, byLogit)] - logCount[best(rival, byLogit)],
    needleKeyCosine: keyCosine,
  };
}

/** The first `n` tokens of a head's sequence (views, no copy). */
function prefix(seq: Seq, n: number): Seq {
  const { keyDim, valueDim } = seq;
  return {
    q: seq.q.subarray(0, n * keyDim),
    k: seq.k.subarray(0, n * keyDim),
    v: seq.v.subarray(0, n * valueDim),
    seqLen: n,
    keyDim,
    valueDim,
  };
}

/**
 * Each token's squared distance to the nearest dictionary row when its chunk was absorbed, its key
 * as the op compares it (unit length where the config normalises keys), against the rows as they
 * stood before that absorb (not this absorb's own spawns). NaN for tokens absorbed into an empty
 * dictionary and for tokens still pending at the end. The stream is replayed chunk by chunk with
 * @ovq/core's float64 reference, so the rows are the reference's own.
 */
export function absorbDistances(seq: Seq, config: OvqConfig): Float64Array {
  const { seqLen, keyDim, valueDim } = seq;
  const state = createOvqState({ keyDim, valueDim }, config);
  const { chunkSize: C, normalize } = state.config;
  const out = new Float64Array(seqLen).fill(Number.NaN);
  const key = new Float64Array(keyDim);
  for (let start = 0; start + C <= seqLen; start += C) {
    const rows = state.centroidKeys;
    for (let t = start; t < start + C && state.size > 0; t++) {
      if (normalize) normalizeRow(seq.k, t * keyDim, keyDim, key, 0);
      else key.set(seq.k.subarray(t * keyDim, (t + 1) * keyDim));
      let nearest = Number.POSITIVE_INFINITY;
      for (let i = 0; i < state.size; i++) {
        let d2 = 0;
        for (let d = 0; d < keyDim; d++) d2 += (key[d] - rows[i * keyDim + d]) ** 2;
        if (d2 < nearest) nearest = d2;
      }
      out[t] = nearest;
    }
    ovqAppend(state, {
      q: seq.q.subarray(start * keyDim, (start + C) * keyDim),
      k: seq.k.subarray(start * keyDim, (start + C) * keyDim),
      v: seq.v.subarray(start * valueDim, (start + C) * valueDim),
      seqLen: C,
    });
  }
  return out;
}

function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The `copyDistance` … `fillerDistanceMax` terms of NeedleHeadTrace. */
export function copyNovelty(
  distances: Float64Array,
  needle: { at: number; tokens: number },
  keyAt: number,
  questionAt: number,
  window: number,
) {
  const copies: number[] = [];
  const filler: number[] = [];
  const end = Math.min(questionAt, distances.length);
  for (let t = needle.at + needle.tokens; t < end; t++) {
    if (Number.isNaN(distances[t])) continue;
    (t <= keyAt + window ? copies : filler).push(distances[t]);
  }
  return {
    copyDistance: median(copies),
    fillerDistance: median(filler),
    // A reduce, not Math.max(...filler): a long haystack would overflow the argument list.
    fillerDistanceMax: filler.length ? filler.reduce((a, x) => Math.max(a, x)) : Number.NaN,
  };
}

/** The cosine above which a haystack token's key counts as the needle key's twin. */
export const KEY_TWIN_COSINE = 0.9;

/** Haystack tokens whose key is the needle key's twin (see NeedleHeadTrace.keyTwins). */
export function keyTwins(
  seq: Seq,
  needle: { at: number; tokens: number },
  keyAt: number,
  questionAt: number,
  window: number,
) {
  const { keyDim } = seq;
  const key = seq.k.subarray(keyAt * keyDim, (keyAt + 1) * keyDim);
  const positions: number[] = [];
  let inWindow = 0;
  for (let t = 0; t < questionAt; t++) {
    if (t >= needle.at && t < needle.at + needle.tokens) continue;
    if (cosine(key, seq.k.subarray(t * keyDim, (t + 1) * keyDim)) <= KEY_TWIN_COSINE) continue;
    positions.push(t);
    if (t > keyAt && t <= keyAt + window) inWindow++;
  }
  return { keyTwins: positions.length, keyTwinsInWindow: inWindow, positions };
}

/**
 * Needle statistics of one head of one sequence (see NeedleHeadTrace). `twins` (the needle's key
 * token, the question's first token and the window of the layer below) adds the key twins.
 */
export function traceHead(
  seq: Seq,
  config: OvqConfig,
  needle: { at: number; tokens: number },
  scored: number[],
  twins?: { keyAt: number; questionAt: number; window: number },
) {
  let first: { seeded: number; pending: number; rowCount: number; rows: number } | undefined;
  let readWeight = 0;
  let needleMass = 0;
  const why = { similarityMargin: 0, similarityRank: 0, priorMargin: 0, needleKeyCosine: 0 };
  let beta = Number.NaN;
  const twinsFound = twins && keyTwins(seq, needle, twins.keyAt, twins.questionAt, twins.window);
  let twinMass = 0;
  for (const p of scored) {
    if (p < needle.at + needle.tokens)
      throw new Error(`scored position ${p}: expected it after the needle span`);
    const { state, trace } = ovqAttentionReference(prefix(seq, p), config);
    const chunk = state.config.chunkSize;
    const absorbed = state.tokensAbsorbed;
    // Token t's read slot: its dictionary row, or its pending slot after the rows.
    const slotOf = (t: number) =>
      t >= absorbed
        ? state.size + t - absorbed
        : trace[Math.floor(t / chunk)].assignment[t % chunk];
    const needleTokens = Array.from({ length: needle.tokens }, (_, i) => needle.at + i);
    const needleSlots = new Set(needleTokens.map(slotOf));
    beta = state.config.beta;
    const slots = readSlotsAt(state, seq, p);
    const w = slotWeights(slots, beta);
    // A token's own share of the read: its slot's weight over the tokens the slot averages.
    const share = (t: number) => {
      const j = slotOf(t);
      return j < state.size ? w[j] / state.counts[j] : w[j];
    };
    const terms = competition(
      slots,
      beta,
      (j) => needleSlots.has(j),
      (j) => j < state.size && !needleSlots.has(j),
    );
    for (const key of Object.keys(why) as (keyof typeof why)[])
      why[key] += terms[key] / scored.length;
    for (const j of needleSlots) readWeight += w[j] / scored.length;
    for (const t of needleTokens) needleMass += share(t) / scored.length;
    // Twins past p are not read yet (only when the question lies past p).
    for (const t of twinsFound?.positions ?? []) if (t < p) twinMass += share(t) / scored.length;
    if (!first) {
      const inRows = needleTokens.filter((t) => t < absorbed);
      const seeded = inRows.filter((t) =>
        trace[Math.floor(t / chunk)].spawned.includes(t % chunk),
      ).length;
      const countSum = inRows.reduce((sum, t) => sum + state.counts[slotOf(t)], 0);
      first = {
        seeded,
        pending: needle.tokens - inRows.length,
        rowCount: inRows.length > 0 ? countSum / inRows.length : Number.NaN,
        rows: state.size,
      };
    }
  }
  if (!first) throw new Error('scored: expected at least one position');
  const twinStats = twinsFound
    ? { keyTwins: twinsFound.keyTwins, keyTwinsInWindow: twinsFound.keyTwinsInWindow, twinMass }
    : { keyTwins: Number.NaN, keyTwinsInWindow: Number.NaN, twinMass: Number.NaN };
  // Novelty of the copies, over what the dictionary had absorbed by the first scored position.
  const novelty = twins
    ? copyNovelty(
        absorbDistances(prefix(seq, scored[0]), config),
        needle,
        twins.keyAt,
        twins.questionAt,
        twins.window,
      )
    : { copyDistance: Number.NaN, fillerDistance: Number.NaN, fillerDistanceMax: Number.NaN };
  return { ...first, readWeight, needleMass, beta, ...twinStats, ...novelty, ...why };
}

/** Options of `traceNeedles`. */
export type NeedleTraceOptions = {
  /**
   * Score and trace the model with the echo cut (`echoCut`): the haystack tokens after the
   * needle lose what the sliding-window blocks below the OVQ layer copied of it. Default false.
   */
  cutEcho?: boolean;
  /** With `cutEcho`: cut the echo of a decoy span of filler instead (the control, see `echoCut`). */
  decoy?: boolean;
  /** Seed of the filler that stands in for the needle in the cut's source run. Default 0. */
  cutSeed?: number;
};

/**
 * Traces the needle of every sequence of a NIAH batch through every OVQ head of `model`: for
 * each sequence the needle span is found by its NEEDLE marker and the scored positions by the
 * targets. Layers whose mixer has no `headInputs` (not OVQ) are skipped.
 */
export async function traceNeedles(
  model: Decoder,
  batch: TokenBatch,
  vocab: NiahVocabulary,
  needleLength: number,
  options: NeedleTraceOptions = {},
): Promise<NeedleHeadTrace[]> {
  const B = batch.batch;
  return onNeedleBatch(model, batch, vocab, needleLength, options, async (where, inputs, patch) => {
    const { needles, questions, scored } = where;
    const correct = await scoredAccuracy(model, batch, inputs, scored, patch);
    // Twins are counted against the window of the sliding-window layers, if the model has any.
    const window = model.kinds.includes('swa') ? swaWindow(model.config.mixerOptions) : 0;
    const out: NeedleHeadTrace[] = [];
    for (const [layer, mixer] of model.mixers.entries()) {
      if (!mixer.headInputs) continue;
      const x = model.layerInput(inputs, layer, patch);
      const heads = await mixer.headInputs(x);
      x.dispose();
      const H = heads.length / B;
      heads.forEach(({ seq, config }, bh) => {
        const b = Math.floor(bh / H);
        const needle = { at: needles[b], tokens: needleLength + 2 };
        out.push({
          layer,
          head: bh % H,
          sequence: b,
          needleAt: needle.at,
          needleTokens: needle.tokens,
          ...traceHead(seq, config, needle, scored[b], {
            keyAt: needle.at + 1,
            questionAt: questions[b],
            window,
          }),
          correct: correct[b],
        });
      });
    }
    return out;
  });
}

/** Each sequence's NEEDLE marker, QUERY and scored positions; names a sequence that lacks one. */
export function locateNeedles(batch: TokenBatch, vocab: NiahVocabulary) {
  const { batch: B, seqLen: T } = batch;
  const needles: number[] = [];
  const questions: number[] = [];
  const scored: number[][] = [];
  for (let b = 0; b < B; b++) {
    const row = batch.inputs.subarray(b * T, (b + 1) * T);
    const question = row.lastIndexOf(vocab.query);
    if (question < 0) throw new Error(`batch: sequence ${b} has no QUERY token (${vocab.query})`);
    // The asked needle: the NEEDLE marker before the question followed by the question's key
    // (with several needles, the others are distractors).
    let at = -1;
    for (let t = 0; t + 1 < question && at < 0; t++)
      if (row[t] === vocab.needle && row[t + 1] === row[question + 1]) at = t;
    if (at < 0)
      throw new Error(
        `batch: sequence ${b} has no NEEDLE token (${vocab.needle}) under the asked key before its question`,
      );
    needles.push(at);
    questions.push(question);
    const positions: number[] = [];
    for (let t = 0; t < T; t++) if (batch.targets[b * T + t] !== IGNORE) positions.push(t);
    if (positions.length === 0) throw new Error(`batch: sequence ${b} has no scored position`);
    scored.push(positions);
  }
  return { needles, questions, scored };
}

/**
 * Per sequence of a NIAH batch, the fraction of its scored tokens the model predicts (argmax),
 * with the echo cut when `options.cutEcho` is set. Unlike `traceNeedles` it needs no OVQ layer:
 * any model with a long-range mixer above sliding-window blocks can be cut.
 */
export async function needleAccuracy(
  model: Decoder,
  batch: TokenBatch,
  vocab: NiahVocabulary,
  needleLength: number,
  options: NeedleTraceOptions = {},
): Promise<number[]> {
  return onNeedleBatch(model, batch, vocab, needleLength, options, ({ scored }, inputs, patch) =>
    scoredAccuracy(model, batch, inputs, scored, patch),
  );
}

/**
 * Runs `f` on a NIAH batch's located needles, its inputs as a tensor and the echo cut's patch (when
 * `options.cutEcho`), and frees both tensors afterwards.
 */
async function onNeedleBatch<R>(
  model: Decoder,
  batch: TokenBatch,
  vocab: NiahVocabulary,
  needleLength: number,
  options: NeedleTraceOptions,
  f: (
    where: ReturnType<typeof locateNeedles>,
    inputs: tf.Tensor,
    patch: ResidualPatch | undefined,
  ) => Promise<R>,
): Promise<R> {
  const where = locateNeedles(batch, vocab);
  const inputs = tf.tensor2d(batch.inputs, [batch.batch, batch.seqLen], 'int32');
  const patch = cutPatch(model, batch, vocab, needleLength, where, options);
  try {
    return await f(where, inputs, patch);
  } finally {
    inputs.dispose();
    if (patch) tf.dispose([patch.source, patch.mask]);
  }
}

function cutPatch(
  model: Decoder,
  batch: TokenBatch,
  vocab: NiahVocabulary,
  needleLength: number,
  where: { needles: number[]; questions: number[] },
  options: NeedleTraceOptions,
): ResidualPatch | undefined {
  if (!options.cutEcho) return undefined;
  const cut = echoCut(model, batch, vocab, needleLength, where, {
    seed: options.cutSeed,
    decoy: options.decoy,
  });
  const shape: [number, number] = [batch.batch, batch.seqLen];
  return {
    afterLayer: cut.afterLayer,
    source: tf.tensor2d(cut.source, shape, 'int32'),
    mask: tf.tensor2d(cut.mask, shape),
  };
}

/** The model's argmax token at each sequence's scored positions. */
async function scoredPredictions(
  model: Decoder,
  batch: TokenBatch,
  inputs: tf.Tensor,
  scored: number[][],
  patch: ResidualPatch | undefined,
): Promise<number[][]> {
  const T = batch.seqLen;
  const flat = scored.flatMap((positions, b) => positions.map((t) => b * T + t));
  const argmax = tf.tidy(() =>
    tf.argMax(model.forwardAt(inputs, Int32Array.from(flat), patch), -1),
  );
  const predicted = await argmax.data();
  argmax.dispose();
  let i = 0;
  return scored.map((positions) => positions.map(() => predicted[i++]));
}

async function scoredAccuracy(
  model: Decoder,
  batch: TokenBatch,
  inputs: tf.Tensor,
  scored: number[][],
  patch: ResidualPatch | undefined,
): Promise<number[]> {
  const T = batch.seqLen;
  const predicted = await scoredPredictions(model, batch, inputs, scored, patch);
  return scored.map((positions, b) => {
    const hits = positions.filter((t, j) => predicted[b][j] === batch.targets[b * T + t]).length;
    return hits / positions.length;
  });
}

/**
 * With several needles (NIAH-MK), whose value the model answers, per sequence: `asked`, the
 * fraction of scored tokens equal to the asked needle's value (the accuracy), and `other`, the
 * largest such fraction over the other needles (token j of the answer against value token j of
 * that needle). A model that matches the key has asked ≈ 1, other ≈ 0; one that copies a needle
 * without matching the key has other > 0; one that blends them may match neither.
 */
export async function needleAnswers(
  model: Decoder,
  batch: TokenBatch,
  vocab: NiahVocabulary,
  needleLength: number,
): Promise<{ asked: number; other: number }[]> {
  return onNeedleBatch(model, batch, vocab, needleLength, {}, async (where, inputs) => {
    const T = batch.seqLen;
    const predicted = await scoredPredictions(model, batch, inputs, where.scored, undefined);
    return where.scored.map((positions, b) => {
      const row = batch.inputs.subarray(b * T, (b + 1) * T);
      // Value token j of the needle at `at` is at + 2 + j; the answer's token j is the j-th scored.
      const agreement = (at: number) =>
        positions.filter((_, j) => predicted[b][j] === row[at + 2 + j]).length / positions.length;
      let other = 0;
      for (let t = 0; t < where.questions[b]; t++)
        if (row[t] === vocab.needle && t !== where.needles[b])
          other = Math.max(other, agreement(t));
      return { asked: agreement(where.needles[b]), other };
    });
  });
}

/** Means over sequences per (layer, head); rowCount averages the sequences where it is defined. */
export function summarizeNeedleTraces(traces: NeedleHeadTrace[]) {
  const groups = new Map<string, NeedleHeadTrace[]>();
  for (const t of traces) {
    const key = `${t.layer}/${t.head}`;
    groups.set(key, [...(groups.get(key) ?? []), t]);
  }
  return [...groups.values()].map((g) => {
    const mean = (f: (t: NeedleHeadTrace) => number) => {
      const xs = g.map(f).filter((x) => !Number.isNaN(x));
      return xs.length ? xs.reduce((a, x) => a + x, 0) / xs.length : Number.NaN;
    };
    return {
      layer: g[0].layer,
      head: g[0].head,
      sequences: g.length,
      seeded: mean((t) => t.seeded / t.needleTokens),
      pending: mean((t) => t.pending / t.needleTokens),
      rowCount: mean((t) => t.rowCount),
      rows: mean((t) => t.rows),
      readWeight: mean((t) => t.readWeight),
      needleMass: mean((t) => t.needleMass),
      keyTwins: mean((t) => t.keyTwins),
      keyTwinsInWindow: mean((t) => t.keyTwinsInWindow),
      twinMass: mean((t) => t.twinMass),
      copyDistance: mean((t) => t.copyDistance),
      fillerDistance: mean((t) => t.fillerDistance),
      fillerDistanceMax: mean((t) => t.fillerDistanceMax),
      beta: mean((t) => t.beta),
      similarityMargin: mean((t) => t.similarityMargin),
      similarityRank: mean((t) => t.similarityRank),
      priorMargin: mean((t) => t.priorMargin),
      needleKeyCosine: mean((t) => t.needleKeyCosine),
      correct: mean((t) => t.correct),
    };
  });
}
