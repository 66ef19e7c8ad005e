// Starting the backend a model trains on, in Node. Default wasm: on this project's 2-core machine
// it trains the analogue model (4 layers, d_model 128, T 1024) several times faster than tfjs's
// cpu backend, and webgpu without a GPU runs on SwiftShader (slower still). The OVQ host kernels
// and the baselines' host kernels (cpu, wasm) get worker pools, spawned once here and reused by
// every step, so batch×heads run on every core. Whatever cannot start falls back with one printed line, never silently.
//
// tfjs-backend-wasm's multi-threaded build is not used: 4.22 reports no thread support in Node
// (flags_wasm.js: WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE, tfjs issue #3830), and
// forcing the flag fails in backend initialisation (its pthread workers are blob: URLs, which
// Node's worker_threads refuse: ERR_WORKER_PATH). tfjs-wasm therefore runs one thread here.
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { createOvqWorkerPool, type OvqWorkerPool } from '@ovq/core';
import {
  type BaselineWorkerPool,
  baselineWorkerPool,
  createBaselineWorkerPool,
  hostWorkerPool,
  setBaselineWorkerPool,
  setHostWorkerPool,
  useSharedWasmClones,
} from '@ovq/tfjs';
import * as tf from '@tensorflow/tfjs-core';

export const BACKENDS = ['cpu', 'wasm', 'webgpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

/** The backend used when none is given: the fastest measured here (see README, "Backends"). */
export const DEFAULT_BACKEND: BackendName = 'wasm';

export type StartBackendOptions = {
  /** cpu | wasm | webgpu; default DEFAULT_BACKEND. */
  backend?: string;
  /**
   * Worker threads for the OVQ host kernels (cpu, wasm); default the machine's hardware threads.
   * 1 or less: no pool (the kernels run on the calling thread). Results are bit-identical for
   * every value.
   */
  threads?: number;
  /** Registers webgpu (e.g. Dawn's navigator.gpu and @tensorflow/tfjs-backend-webgpu). */
  prepareWebGpu?: () => Promise<void>;
  /** Where the one-line fallback notices go; default console.error. */
  log?: (line: string) => void;
};

export type StartedBackend = {
  /** The backend in use (may differ from the one asked for: see `fellBackFrom`). */
  backend: BackendName;
  /** The backend asked for when it could not start. */
  fellBackFrom?: BackendName;
  /** Workers of each host-kernel pool, OVQ's and the baselines' (0: none). */
  threads: number;
  /** Stops the worker pool (idempotent). Hook it to exit / SIGINT handling. */
  dispose(): Promise<void>;
};

async function registerWasm(): Promise<void> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  const dist = dirname(createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm'));
  wasm.setWasmPaths(`${dist}/`);
}

async function tryBackend(name: BackendName, options: StartBackendOptions): Promise<void> {
  if (name === 'wasm') await registerWasm();
  if (name === 'webgpu') {
    if (!options.prepareWebGpu)
      throw new Error('no webgpu set-up was given (prepareWebGpu), e.g. the trainer’s Dawn start');
    await options.prepareWebGpu();
  }
  // tfjs logs and returns false when a backend's initialisation fails.
  if (!(await tf.setBackend(name))) throw new Error('TensorFlow.js could not initialise it');
  await tf.ready();
}

/**
 * Starts the backend to train on (default wasm) and, on cpu and wasm, the OVQ host kernels'
 * worker pool. A backend that cannot start falls back (webgpu → wasm → cpu) with one printed line
 * naming what was used; an unknown name is an error.
 */
export async function startBackend(options: StartBackendOptions = {}): Promise<StartedBackend> {
  const log = options.log ?? ((line: string) => console.error(line));
  const asked = (options.backend ?? DEFAULT_BACKEND) as BackendName;
  if (!(BACKENDS as readonly string[]).includes(asked))
    throw new Error(`backend: got "${asked}"; expected one of ${BACKENDS.join(', ')}`);
  const chain = [asked, ...(['wasm', 'cpu'] as const).filter((b) => b !== asked)];
  let backend: BackendName | null = null;
  let firstFailure = '';
  for (const name of chain) {
    try {
      await tryBackend(name, options);
      backend = name;
      break;
    } catch (error) {
      firstFailure ||= error instanceof Error ? error.message : String(error);
    }
  }
  if (backend === null)
    throw new Error(`backend: none of ${chain.join(', ')} could start (${asked}: ${firstFailure})`);
  if (backend !== asked)
    log(`backend: ${asked} could not start (${firstFailure}); using ${backend}`);
  // tfjs-wasm copies every tensor saved for a gradient; share it as cpu and webgl do.
  if (backend === 'wasm') useSharedWasmClones();

  const wanted = options.threads ?? availableParallelism();
  let pool: OvqWorkerPool | null = null;
  let basePool: BaselineWorkerPool | null = null;
  if (backend !== 'webgpu' && wanted > 1) {
    const threads = Math.floor(wanted);
    try {
      pool = await createOvqWorkerPool({ threads });
      basePool = await createBaselineWorkerPool({ threads });
      setHostWorkerPool(pool);
      setBaselineWorkerPool(basePool);
    } catch (error) {
      await pool?.dispose();
      pool = null;
      log(
        `worker pool: ${threads} threads could not start (${error instanceof Error ? error.message : String(error)}); the mixer kernels run on the main thread`,
      );
    }
  }
  let disposed = false;
  return {
    backend,
    ...(backend !== asked ? { fellBackFrom: asked } : {}),
    threads: pool?.threads ?? 0,
    async dispose() {
      if (disposed || pool === null) return;
      disposed = true;
      if (hostWorkerPool() === pool) setHostWorkerPool(null);
      if (baselineWorkerPool() === basePool) setBaselineWorkerPool(null);
      await Promise.all([pool.dispose(), basePool?.dispose()]);
    },
  };
}
