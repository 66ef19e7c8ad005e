// Inputs and reference results for the OVQ tests: per-head float64 reference runs of @ovq/core,
// replaying the GPU's discrete decisions once each decision is verified to be float64-optimal up
// to a genuine tie (verifyDecisions: gap ≤ DECISION_EPS·‖k‖·(‖k−μ_taken‖+‖k−μ_best‖)); float32
// rounding may flip a near-tie, anything else fails. The tolerance is never loosened instead.
import {
  type OvqConfig,
  type OvqState,
  type OvqTrace,
  ovqAttentionReference as refAttention,
  ovqAttentionReferenceBackward as refBackward,
} from '@ovq/core';
import { assertClose, randomSeq, verifyDecisions } from '@ovq/core/testing';
import { expect } from 'vitest';
import { concat, head } from './reference.js';

export const TOL = 1e-4;

export type Case = { bh: number; T: number; dk: number; dv: number; config: OvqConfig };

export function caseName(c: Case): string {
  const cfg = c.config;
  const extra = [
    cfg.read,
    cfg.spawn,
    typeof cfg.growth === 'object' ? cfg.growth.kind : cfg.growth,
    typeof cfg.update === 'object' ? cfg.update.kind : cfg.update,
  ]
    .filter(Boolean)
    .join('-');
  return `BH${c.bh}-T${c.T}-DK${c.dk}-DV${c.dv}-C${cfg.chunkSize}-N${cfg.capacity}${extra ? `-${extra}` : ''}`;
}

export function makeInput(seed: number, c: Case) {
  const parts = Array.from({ length: c.bh }, (_, h) => randomSeq(seed + 17 * h, c.T, c.dk, c.dv));
  return {
    q: Float32Array.from(concat(parts.map((p) => p.q))),
    k: Float32Array.from(concat(parts.map((p) => p.k))),
    v: Float32Array.from(concat(parts.map((p) => p.v))),
    batchHeads: c.bh,
    seqLen: c.T,
    keyDim: c.dk,
    valueDim: c.dv,
  };
}

export type Input = ReturnType<typeof makeInput>;

export function headSeq(
  input: { q: Float32Array; k: Float32Array; v: Float32Array },
  h: number,
  T: number,
  dk: number,
  dv: number,
) {
  return {
    q: head(input.q, h, T, dk),
    k: head(input.k, h, T, dk),
    v: head(input.v, h, T, dv),
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
  };
}

/**
 * Throws (naming the head, absorb and token) unless every GPU decision is float64-optimal up to a
 * stated tie ε; returns how many decisions differ from float64's own choice (all genuine ties).
 */
export function checkDecisions(
  input: Input,
  config: OvqConfig,
  trace: OvqTrace[],
): { decisions: number; ties: number } {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = input;
  expect(trace.length, 'one trace per head').toBe(bh);
  let decisions = 0;
  let ties = 0;
  for (let h = 0; h < bh; h++) {
    try {
      const s = verifyDecisions(headSeq(input, h, T, dk, dv), config, trace[h]);
      decisions += s.decisions;
      ties += s.ties;
    } catch (error) {
      throw new Error(`head ${h}: ${(error as Error).message}`);
    }
  }
  return { decisions, ties };
}

/** Runs the reference per head with the GPU's (verified) decisions; returns outputs and states. */
export function reference(input: Input, config: OvqConfig, trace: OvqTrace[]) {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = input;
  const { ties } = checkDecisions(input, config, trace);
  const heads = Array.from({ length: bh }, (_, h) =>
    refAttention(headSeq(input, h, T, dk, dv), config, { replay: trace[h] }),
  );
  return { output: concat(heads.map((r) => r.output)), states: heads.map((r) => r.state), ties };
}

export function compareStates(ref: OvqState[], gpu: OvqState[]): void {
  expect(gpu.length).toBe(ref.length);
  ref.forEach((r, h) => {
    expect(gpu[h].size, `head ${h} size`).toBe(r.size);
    expect(gpu[h].pendingCount, `head ${h} pendingCount`).toBe(r.pendingCount);
    expect(gpu[h].tokensSeen, `head ${h} tokensSeen`).toBe(r.tokensSeen);
    expect(Array.from(gpu[h].counts), `head ${h} counts`).toEqual(Array.from(r.counts));
    if (r.size > 0) {
      assertClose(`head ${h} centroidKeys`, r.centroidKeys, gpu[h].centroidKeys, TOL);
      assertClose(`head ${h} centroidValues`, r.centroidValues, gpu[h].centroidValues, TOL);
    }
    if (r.pendingCount > 0) {
      assertClose(
        `head ${h} pendingKeys`,
        r.pendingKeys.subarray(0, r.pendingCount * r.keyDim),
        gpu[h].pendingKeys.subarray(0, r.pendingCount * r.keyDim),
        TOL,
      );
      assertClose(
        `head ${h} pendingValues`,
        r.pendingValues.subarray(0, r.pendingCount * r.valueDim),
        gpu[h].pendingValues.subarray(0, r.pendingCount * r.valueDim),
        TOL,
      );
    }
  });
}

/**
 * Every gradient (dq, dk, dv, dβ per head) against the float64 reference backward run with the
 * forward's decisions `trace` (verify them with checkDecisions first); RMS ratio ≤ TOL.
 */
export function compareGradients(
  input: Input,
  config: OvqConfig,
  dOut: Float32Array,
  trace: OvqTrace[],
  gpu: { dq: Float32Array; dk: Float32Array; dv: Float32Array; dbetaPerHead: ArrayLike<number> },
): void {
  const { batchHeads: bh, seqLen: T, keyDim: dk, valueDim: dv } = input;
  const ref = Array.from({ length: bh }, (_, h) =>
    refBackward(headSeq(input, h, T, dk, dv), config, head(dOut, h, T, dv), { replay: trace[h] }),
  );
  assertClose('dq', concat(ref.map((r) => r.dq)), gpu.dq, TOL);
  assertClose('dk', concat(ref.map((r) => r.dk)), gpu.dk, TOL);
  assertClose('dv', concat(ref.map((r) => r.dv)), gpu.dv, TOL);
  assertClose(
    'dbeta per head',
    ref.map((r) => r.dbeta),
    gpu.dbetaPerHead,
    TOL,
  );
}
