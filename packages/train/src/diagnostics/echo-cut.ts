// The echo cut: a causal test of whether a long-range layer (OVQ, KVM, Gated DeltaNet, …) finds a
// NIAH needle through copies of it that the sliding-window blocks below wrote into the haystack
// tokens after it. The residual stream of those tokens is replaced (activation patching,
// `ResidualPatch`) by the stream of the same sequence with the needle swapped for filler, so they
// carry no trace of the needle while the needle's own tokens, everything before it and the
// question are untouched.
import type { Decoder } from '../model/decoder.js';
import { swaWindow } from '../model/tfjs-mixers.js';
import type { NiahVocabulary } from '../tasks/niah.js';
import { itemSeed, Random } from '../tasks/random.js';
import type { TokenBatch } from '../tasks/types.js';

/** A `ResidualPatch` for one batch, as host arrays (row-major [batch, seqLen]). */
export type EchoCut = {
  /** The block after which the stream is patched: the one just below the first long-range mixer. */
  afterLayer: number;
  /** The batch's inputs with each needle span (marker, key and values) replaced by filler. */
  source: Int32Array;
  /** 1 at the haystack tokens after each needle whose stream after `afterLayer` saw it. */
  mask: Float32Array;
  /** Cut tokens per sequence (fewer than the reach where the question comes sooner). */
  cut: number[];
};

/**
 * The echo cut of a NIAH batch for `model`, after the sliding-window blocks (window W) below its
 * first long-range mixer (OVQ, Gated DeltaNet, …): the needle then reaches at most
 * (afterLayer + 1)·(W − 1) tokens past its last token, and exactly those (up to the question) are
 * cut. `where.needles[b]` is the position of sequence b's NEEDLE marker and `where.questions[b]`
 * that of its QUERY (see `locateNeedles`); the replacement filler is uniform over the filler
 * tokens, drawn from `seed` per sequence.
 *
 * `decoy`: the control. The same cut for a decoy, a needle-long span of filler halfway between
 * the needle's reach and the question's window, so the cut tokens lose a context that held no
 * needle; a sequence with no room for the decoy (haystack too short) is left uncut.
 */
export function echoCut(
  model: Decoder,
  batch: TokenBatch,
  vocab: NiahVocabulary,
  needleLength: number,
  where: { needles: number[]; questions: number[] },
  options: { seed?: number; decoy?: boolean } = {},
): EchoCut {
  // The first long-range mixer: every block below it must be a sliding window, so the needle
  // reaches a bounded number of tokens before it.
  const firstLongRange = model.kinds.findIndex((k) => k !== 'swa');
  if (firstLongRange < 1)
    throw new Error(
      `cutEcho: the model's mixers are ${model.kinds.join(',')}; expected a long-range mixer above one or more swa blocks`,
    );
  const afterLayer = firstLongRange - 1;
  const window = swaWindow(model.config.mixerOptions);
  const reach = (afterLayer + 1) * (window - 1);
  const { batch: B, seqLen: T } = batch;
  const source = Int32Array.from(batch.inputs);
  const mask = new Float32Array(B * T);
  const cut: number[] = [];
  const tokens = needleLength + 2;
  for (let b = 0; b < B; b++) {
    let at = where.needles[b];
    const question = where.questions[b];
    if (options.decoy) {
      // Free haystack: after the needle's reach, and far enough from the question that neither
      // the decoy nor its cut tokens are in the question's window.
      const from = at + tokens + reach;
      const to = question - reach - tokens - reach;
      if (to < from) {
        cut.push(0);
        continue;
      }
      at = Math.floor((from + to) / 2);
    }
    const last = at + tokens - 1;
    const rng = new Random(itemSeed(options.seed ?? 0, b));
    for (let t = at; t <= last; t++) source[b * T + t] = rng.int(0, vocab.fillerSize);
    const end = Math.min(last + reach, question - 1);
    for (let t = last + 1; t <= end; t++) mask[b * T + t] = 1;
    cut.push(Math.max(0, end - last));
  }
  return { afterLayer, source, mask, cut };
}
