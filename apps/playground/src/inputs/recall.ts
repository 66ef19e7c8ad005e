// The synthetic recall sequence: `facts` key→value pairs scattered among distractors. Distractor
// keys come from 8 topics (a topic centre plus noise, so a dictionary can compress them) and
// their values from the topic's value plus noise; each fact has its own random unit key and
// random value, seen once. A fact is "retrievable" from a state when reading the state with the
// fact's key gives an output whose nearest fact value (by cosine) is that fact's own (probe.ts).
// q_t = k_t throughout. Everything is drawn from `seed` with @ovq/core's mulberry32.
import { KEY_DIM, VALUE_DIM } from './project.js';
import { createRng, normalizeRow, normals } from './random.js';
import type { PlaygroundInput } from './types.js';

export type RecallOptions = { seqLen: number; facts: number; seed: number };

export const RECALL_DEFAULTS: RecallOptions = { seqLen: 2048, facts: 24, seed: 7 };
const TOPICS = 8;
const NOISE = 0.35;

export function recallSequence(options: Partial<RecallOptions> = {}): PlaygroundInput {
  const { seqLen: T, facts: F, seed } = { ...RECALL_DEFAULTS, ...options };
  if (!Number.isInteger(T) || T < 16) {
    throw new Error(`recall.seqLen: got ${T}; expected an integer ≥ 16`);
  }
  if (!Number.isInteger(F) || F < 1 || F > T / 4) {
    throw new Error(`recall.facts: got ${F}; expected an integer in [1, seqLen/4 = ${T / 4}]`);
  }
  const dk = KEY_DIM;
  const dv = VALUE_DIM;
  const rng = createRng(seed);
  const topicKeys = normals(rng, TOPICS * dk);
  for (let i = 0; i < TOPICS; i++) normalizeRow(topicKeys, i * dk, dk);
  const topicValues = normals(rng, TOPICS * dv);
  const factKeys = new Float32Array(normals(rng, F * dk));
  for (let i = 0; i < F; i++) normalizeRow(factKeys, i * dk, dk);
  const factValues = new Float32Array(normals(rng, F * dv));
  // Facts at distinct positions spread over the first 90% of the stream (one per stratum).
  const positions = new Int32Array(F);
  const span = Math.floor((T * 0.9) / F);
  for (let i = 0; i < F; i++) positions[i] = i * span + Math.floor(rng() * span);
  const k = new Float32Array(T * dk);
  const v = new Float32Array(T * dv);
  let next = 0;
  for (let t = 0; t < T; t++) {
    if (next < F && positions[next] === t) {
      k.set(factKeys.subarray(next * dk, (next + 1) * dk), t * dk);
      v.set(factValues.subarray(next * dv, (next + 1) * dv), t * dv);
      next++;
      continue;
    }
    const topic = Math.floor(rng() * TOPICS);
    const nk = normals(rng, dk);
    const nv = normals(rng, dv);
    const row = new Float64Array(dk);
    for (let d = 0; d < dk; d++)
      row[d] = topicKeys[topic * dk + d] + (NOISE * nk[d]) / Math.sqrt(dk);
    normalizeRow(row, 0, dk);
    k.set(row, t * dk);
    for (let d = 0; d < dv; d++) v[t * dv + d] = topicValues[topic * dv + d] + NOISE * nv[d];
  }
  return {
    kind: 'recall',
    label: `synthetic recall: ${F} facts among ${T - F} distractors (seed ${seed})`,
    q: k.slice(),
    k,
    v,
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
    facts: { count: F, positions, keys: factKeys, values: factValues },
  };
}
