// WebGPU entries from @ovq/webgpu, one per adapter Dawn can open here. Timings include the upload
// of q/k/v and the read-back of the outputs (the ops' public async API). Without a GPU these are
// software adapters (llvmpipe, SwiftShader): they prove the kernels run, not how fast GPUs are.
// The package is imported dynamically (its native Dawn module may fail to load) but typed as the
// package itself: a renamed export is a compile error, a failed load a skipped row with the reason.
import { existsSync, mkdirSync } from 'node:fs';
import { decayLinearAttention, softmaxAttention, softmaxAttentionBackward } from '@ovq/baselines';
import { type OvqTrace, ovqAttentionReference, ovqAttentionReferenceBackward } from '@ovq/core';
import {
  denseStateForwardFlops,
  modeFlops,
  ovqForwardFlops,
  softmaxForwardFlops,
} from './flops.js';
import { makeDOutput, makeSeq, rmsRatio, worstGradientRms } from './inputs.js';
import { OVQ_BENCH_CONFIG, ovqStateNumbers } from './ovq.js';
import type { CheckResult, Dims, Implementation, Skipped } from './types.js';

type Gpu = typeof import('@ovq/webgpu');
type Ctx = InstanceType<Gpu['GpuContext']>;
type Input = Dims & {
  batchHeads: number;
  seqLen: number;
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
};

const SWIFTSHADER = '/usr/lib/chromium/vk_swiftshader_icd.json';
const CHECK_DIMS: Dims = { keyDim: 16, valueDim: 12 };
const CHECK_T = 203;
const TOLERANCE = 1e-4;

export type AdapterInfo = { name: string; description: string; error?: string };

function prepareEnvironment(): void {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  if (!process.env.XDG_RUNTIME_DIR) {
    mkdirSync('/tmp/ovq-xdg-runtime', { recursive: true, mode: 0o700 });
    process.env.XDG_RUNTIME_DIR = '/tmp/ovq-xdg-runtime';
  }
  if (!process.env.VK_ICD_FILENAMES && existsSync(SWIFTSHADER)) {
    process.env.VK_ICD_FILENAMES = SWIFTSHADER;
  }
}

function input(T: number, dims: Dims, seed: number): Input {
  const s = makeSeq(seed, T, dims);
  return {
    batchHeads: 1,
    seqLen: T,
    ...dims,
    q: s.q as Float32Array,
    k: s.k as Float32Array,
    v: s.v as Float32Array,
  };
}

function gpuEntry(
  mixer: 'ovq' | 'softmax' | 'linear',
  adapter: string,
  config: string,
  forward: (x: Input) => Promise<Float32Array>,
  backward: ((x: Input, dOut: Float32Array) => Promise<Record<string, unknown>>) | undefined,
  check: () => Promise<CheckResult>,
  flops: (T: number, d: Dims) => number,
  stateSize: (T: number, d: Dims) => number,
): Implementation {
  return {
    name: `${mixer}/webgpu-${adapter}`,
    mixer,
    implementation: `webgpu-${adapter}`,
    config,
    hasBackward: backward !== undefined,
    check,
    async setup(T, dims) {
      const x = input(T, dims, 1);
      const dOut = makeDOutput(1, T, dims.valueDim);
      return {
        forward: () => forward(x),
        forwardBackward: backward
          ? async () => {
              await forward(x);
              return backward(x, dOut);
            }
          : undefined,
      };
    },
    flops: (T, d, mode) => modeFlops(flops(T, d), mode),
    stateSize,
  };
}

type GpuOvqResult = { output: Float32Array; trace: OvqTrace[] };

/** OVQ on the GPU, checked against core's reference replaying the GPU's own absorb decisions. */
function ovqGpuEntry(adapter: string, ctx: Ctx, gpu: Gpu): Implementation {
  const c = OVQ_BENCH_CONFIG;
  const fwd = async (x: Input, config = c): Promise<GpuOvqResult> =>
    gpu.ovqAttention(ctx, x, config);
  const bwd = async (x: Input, dOut: Float32Array, config = c) =>
    (await gpu.ovqAttentionBackward(ctx, x, config, dOut)) as unknown as Record<string, unknown>;
  const check = async (): Promise<CheckResult> => {
    const x = input(CHECK_T, CHECK_DIMS, 7);
    const config = { capacity: 24, chunkSize: 16, beta: 6 };
    const gpu = await fwd(x, config);
    const replay = gpu.trace[0];
    const forwardRms = rmsRatio(ovqAttentionReference(x, config, { replay }).output, gpu.output);
    const dOut = makeDOutput(7, CHECK_T, CHECK_DIMS.valueDim);
    const ref = ovqAttentionReferenceBackward(x, config, dOut, { replay });
    const backwardRms = worstGradientRms(
      ref as unknown as Record<string, unknown>,
      await bwd(x, dOut, config),
    ).rms;
    return {
      ok: forwardRms < TOLERANCE && backwardRms < 10 * TOLERANCE,
      forwardRms,
      backwardRms,
      tolerance: TOLERANCE,
      detail: `vs float64 ovqAttentionReference (replayed GPU decisions) on T=${CHECK_T}, dk=${CHECK_DIMS.keyDim}, dv=${CHECK_DIMS.valueDim}`,
    };
  };
  return gpuEntry(
    'ovq',
    adapter,
    `N=${c.capacity} C=${c.chunkSize} β=${c.beta} saturating`,
    async (x) => (await fwd(x)).output,
    (x, dOut) => bwd(x, dOut),
    check,
    (T, d) => ovqForwardFlops(T, d, c),
    (_T, d) => ovqStateNumbers(c, d),
  );
}

export async function webgpuImplementations(): Promise<{
  implementations: Implementation[];
  skipped: Skipped[];
  adapters: AdapterInfo[];
}> {
  const implementations: Implementation[] = [];
  const skipped: Skipped[] = [];
  const adapters: AdapterInfo[] = [];
  const skipAll = (reason: string, implementation = 'webgpu') => {
    for (const mixer of ['ovq', 'softmax', 'linear'] as const) {
      skipped.push({ name: `${mixer}/${implementation}`, mixer, implementation, reason });
    }
  };
  let gpu: Gpu;
  try {
    prepareEnvironment();
    gpu = await import('@ovq/webgpu');
  } catch (error) {
    skipAll(`@ovq/webgpu failed to load: ${String(error)}`);
    return { implementations, skipped, adapters };
  }
  const routes = [
    { name: 'vulkan', options: { nodeBackend: 'vulkan', featureLevel: 'core' } },
    { name: 'opengles', options: { nodeBackend: 'opengles', featureLevel: 'compatibility' } },
  ];
  for (const route of routes) {
    let ctx: Ctx;
    try {
      const acquired = await gpu.acquireDevice(route.options as never);
      ctx = new gpu.GpuContext(acquired.device);
      const i = acquired.adapterInfo;
      adapters.push({
        name: route.name,
        description: `${i.vendor} ${i.architecture} ${i.device} ${i.description}`.trim(),
      });
    } catch (error) {
      adapters.push({ name: route.name, description: '', error: String(error) });
      skipAll(`no ${route.name} adapter: ${String(error).slice(0, 160)}`, `webgpu-${route.name}`);
      continue;
    }
    implementations.push(ovqGpuEntry(route.name, ctx, gpu));
    {
      const scaleOf = (d: Dims) => 1 / Math.sqrt(d.keyDim);
      const fwd = async (x: Input) => (await gpu.attentionForward(ctx, x, scaleOf(x))).output;
      const bwd = async (x: Input, dOut: Float32Array) =>
        (await gpu.attentionBackward(ctx, x, scaleOf(x), dOut)) as unknown as Record<
          string,
          unknown
        >;
      implementations.push(
        gpuEntry(
          'softmax',
          route.name,
          'causal, β=1/√dk',
          fwd,
          bwd,
          async () => {
            const x = input(CHECK_T, CHECK_DIMS, 7);
            const forwardRms = rmsRatio(softmaxAttention(x, {}).output, await fwd(x));
            const dOut = makeDOutput(7, CHECK_T, CHECK_DIMS.valueDim);
            const backwardRms = worstGradientRms(
              softmaxAttentionBackward(x, {}, dOut) as unknown as Record<string, unknown>,
              await bwd(x, dOut),
            ).rms;
            return {
              ok: forwardRms < TOLERANCE && backwardRms < 10 * TOLERANCE,
              forwardRms,
              backwardRms,
              tolerance: TOLERANCE,
              detail: `vs float64 softmaxAttention on T=${CHECK_T}`,
            };
          },
          (T, d) => softmaxForwardFlops(T, d),
          (T, d) => T * (d.keyDim + d.valueDim),
        ),
      );
    }
    // The GPU kernel is the identity-feature, unnormalised form y_t = Σ_{s≤t}(q_t·k_s)v_s, i.e.
    // decay-linear attention with every a_t = 1: check it against that reference.
    const linRef = (x: Input) =>
      decayLinearAttention({ ...x, decay: new Float64Array(x.seqLen).fill(1) }, { scale: 1 });
    {
      const fwd = (x: Input) => gpu.unnormalizedLinearAttention(ctx, x, 64);
      implementations.push(
        gpuEntry(
          'linear',
          route.name,
          'identity features, no normaliser, chunk 64',
          fwd,
          undefined,
          async () => {
            const x = input(CHECK_T, CHECK_DIMS, 7);
            const forwardRms = rmsRatio(linRef(x).output, await fwd(x));
            return {
              ok: forwardRms < TOLERANCE,
              forwardRms,
              backwardRms: null,
              tolerance: TOLERANCE,
              detail: `vs float64 decayLinearAttention (a=1, scale 1) on T=${CHECK_T}`,
            };
          },
          (T, d) => denseStateForwardFlops('linear', T, d),
          (_T, d) => d.keyDim * d.valueDim,
        ),
      );
    }
  }
  return { implementations, skipped, adapters };
}
