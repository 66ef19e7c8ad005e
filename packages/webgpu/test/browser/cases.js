// Runs inside headless Chromium (navigator.gpu): the same checks as the Node tests, on the built
// package (dist/) against @ovq/core's reference, loaded through the page's import map.
import {
  ovqAttentionReferenceBackward as refBackward,
  ovqAttentionReference as refForward,
} from '@ovq/core';
import { assertClose, randomSeq, verifyDecisions } from '@ovq/core/testing';
import {
  acquireDevice,
  attentionBackward,
  attentionForward,
  GpuContext,
  linearAttention,
  matmul,
  ovqAttention,
  ovqAttentionBackward,
} from '@ovq/webgpu';

const TOL = 1e-4;
let ctxPromise = null;

function context() {
  ctxPromise ??= acquireDevice().then((a) => ({
    ctx: new GpuContext(a.device, { poisonOutputs: true }),
    info: a,
  }));
  return ctxPromise;
}

function heads(seed, bh, T, dk, dv) {
  const parts = Array.from({ length: bh }, (_, h) => randomSeq(seed + 17 * h, T, dk, dv));
  const cat = (key) => Float32Array.from(parts.flatMap((p) => Array.from(p[key])));
  return {
    q: cat('q'),
    k: cat('k'),
    v: cat('v'),
    batchHeads: bh,
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
  };
}

function head(x, h, T, d) {
  return Float64Array.from(x.subarray(h * T * d, (h + 1) * T * d));
}

function concat(parts) {
  return Float64Array.from(parts.flatMap((p) => Array.from(p)));
}

function headSeq(input, h) {
  const { seqLen: T, keyDim: dk, valueDim: dv } = input;
  return {
    q: head(input.q, h, T, dk),
    k: head(input.k, h, T, dk),
    v: head(input.v, h, T, dv),
    seqLen: T,
    keyDim: dk,
    valueDim: dv,
  };
}

function naiveAttention(q, k, v, T, dk, dv, scale) {
  const out = new Float64Array(T * dv);
  for (let t = 0; t < T; t++) {
    const w = [];
    for (let s = 0; s <= t; s++) {
      let d = 0;
      for (let i = 0; i < dk; i++) d += q[t * dk + i] * k[s * dk + i];
      w.push(scale * d);
    }
    const max = Math.max(...w);
    const e = w.map((x) => Math.exp(x - max));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let s = 0; s <= t; s++)
      for (let i = 0; i < dv; i++) out[t * dv + i] += (e[s] / sum) * v[s * dv + i];
  }
  return out;
}

const OVQ = { chunkSize: 7, capacity: 16, beta: 5 };

export async function ovqBackwardCase(config) {
  const { ctx } = await context();
  const input = heads(300, 3, 63, 64, 60);
  const dOut = Float32Array.from(heads(301, 3, 63, 1, 60).v);
  const fwd = await ovqAttention(ctx, input, config);
  const gpu = await ovqAttentionBackward(ctx, input, config, dOut);
  // Decisions checked, not trusted: each must be float64-optimal up to a stated tie.
  for (const h of [0, 1, 2]) verifyDecisions(headSeq(input, h), config, fwd.trace[h]);
  const ref = [0, 1, 2].map((h) =>
    refBackward(headSeq(input, h), config, head(dOut, h, 63, 60), { replay: fwd.trace[h] }),
  );
  assertClose('dq', concat(ref.map((r) => r.dq)), gpu.dq, TOL);
  assertClose('dk', concat(ref.map((r) => r.dk)), gpu.dk, TOL);
  assertClose('dv', concat(ref.map((r) => r.dv)), gpu.dv, TOL);
  assertClose(
    'dbeta',
    ref.map((r) => r.dbeta),
    gpu.dbetaPerHead,
    TOL,
  );
}

const CASES = {
  async adapter() {
    const { info } = await context();
    return `${info.adapterInfo.vendor} ${info.adapterInfo.architecture} ${info.adapterInfo.description} (fallback: ${info.isFallbackAdapter})`;
  },
  async 'matmul M63 N60 K64'() {
    const { ctx } = await context();
    const a = Float32Array.from(randomSeq(1, 63, 64, 1).q);
    const b = Float32Array.from(randomSeq(2, 64, 60, 1).q);
    const ref = new Float64Array(63 * 60);
    for (let i = 0; i < 63; i++)
      for (let p = 0; p < 64; p++)
        for (let j = 0; j < 60; j++) ref[i * 60 + j] += a[i * 64 + p] * b[p * 60 + j];
    assertClose('matmul', ref, await matmul(ctx, a, b, 63, 60, 64), TOL);
  },
  async 'softmax attention BH3-T63-DK60-DV64'() {
    const { ctx } = await context();
    const input = heads(10, 3, 63, 60, 64);
    const { output } = await attentionForward(ctx, input, 0.125);
    const ref = concat(
      [0, 1, 2].map((h) =>
        naiveAttention(
          head(input.q, h, 63, 60),
          head(input.k, h, 63, 60),
          head(input.v, h, 63, 64),
          63,
          60,
          64,
          0.125,
        ),
      ),
    );
    assertClose('output', ref, output, TOL);
    const g = await attentionBackward(
      ctx,
      input,
      0.125,
      Float32Array.from(heads(11, 3, 63, 64, 1).q),
    );
    for (const x of [g.dq, g.dk, g.dv])
      if (x.some((y) => !Number.isFinite(y))) throw new Error('non-finite gradient');
  },
  async 'linear attention BH3-T63-DK60-DV64-C7'() {
    const { ctx } = await context();
    const input = heads(20, 3, 63, 60, 64);
    const out = await linearAttention(ctx, input, 7);
    const ref = concat(
      [0, 1, 2].map((h) => {
        const q = head(input.q, h, 63, 60);
        const k = head(input.k, h, 63, 60);
        const v = head(input.v, h, 63, 64);
        const o = new Float64Array(63 * 64);
        for (let t = 0; t < 63; t++)
          for (let s = 0; s <= t; s++) {
            let d = 0;
            for (let i = 0; i < 60; i++) d += q[t * 60 + i] * k[s * 60 + i];
            for (let j = 0; j < 64; j++) o[t * 64 + j] += d * v[s * 64 + j];
          }
        return o;
      }),
    );
    assertClose('output', ref, out, TOL);
  },
  async 'OVQ forward BH3-T63-DK60-DV64-C7 (outputs, state)'() {
    const { ctx } = await context();
    const input = heads(100, 3, 63, 60, 64);
    const gpu = await ovqAttention(ctx, input, OVQ);
    for (const h of [0, 1, 2]) verifyDecisions(headSeq(input, h), OVQ, gpu.trace[h]);
    const ref = [0, 1, 2].map((h) => refForward(headSeq(input, h), OVQ, { replay: gpu.trace[h] }));
    assertClose('output', concat(ref.map((r) => r.output)), gpu.output, TOL);
    ref.forEach((r, h) => {
      if (r.state.size !== gpu.state[h].size)
        throw new Error(`head ${h}: size ${gpu.state[h].size}, expected ${r.state.size}`);
      if (Array.from(r.state.counts).join() !== Array.from(gpu.state[h].counts).join())
        throw new Error(`head ${h}: counts differ`);
      assertClose(`head ${h} keys`, r.state.centroidKeys, gpu.state[h].centroidKeys, TOL);
      assertClose(`head ${h} values`, r.state.centroidValues, gpu.state[h].centroidValues, TOL);
    });
  },
  async 'OVQ backward BH3-T63-DK64-DV60-C7 gaussian (all gradients)'() {
    await ovqBackwardCase({ ...OVQ, read: 'gaussian' });
  },
  async 'OVQ backward BH3-T63-DK64-DV60-C7 ema (all gradients)'() {
    await ovqBackwardCase({ ...OVQ, update: { kind: 'ema', rate: 0.4 } });
  },
};

globalThis.runCase = async (name) => {
  const t0 = performance.now();
  try {
    const value = await CASES[name]();
    return { ok: true, value: value ?? null, ms: performance.now() - t0 };
  } catch (error) {
    return { ok: false, error: String(error?.stack ?? error), ms: performance.now() - t0 };
  }
};
globalThis.caseNames = Object.keys(CASES);
globalThis.casesReady = true;
