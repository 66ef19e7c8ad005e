// tfjs clones every tensor it saves for a gradient (each taped kernel's saved inputs/outputs and
// every customGrad `save`) through the Identity kernel. tfjs-backend-wasm 4.22's Identity copies
// the data into a fresh heap buffer; cpu and webgl instead share the buffer and count a reference.
// Training the analogue model on wasm spent ~15% of its main-thread time in those copies (the
// saved activations of every dense product). Tensors are immutable and no wasm kernel writes
// into its inputs, so sharing is what the other backends already do.
import {
  getKernel,
  type KernelConfig,
  registerKernel,
  unregisterKernel,
} from '@tensorflow/tfjs-core';

type WasmBackend = { incRef(dataId: object): void };

let copying: KernelConfig | null = null;

/**
 * Makes tfjs clones on the wasm backend share the tensor's buffer (reference-counted, like the
 * cpu and webgl backends) instead of copying it. Idempotent. Returns false, changing nothing,
 * when @tensorflow/tfjs-backend-wasm is not loaded. String tensors still copy.
 */
export function useSharedWasmClones(): boolean {
  if (copying !== null) return true;
  const original = getKernel('Identity', 'wasm');
  if (!original) return false;
  copying = original;
  unregisterKernel('Identity', 'wasm');
  registerKernel({
    kernelName: 'Identity',
    backendName: 'wasm',
    kernelFunc: (args) => {
      const x = args.inputs.x as { dataId: object; shape: number[]; dtype: string };
      if (x.dtype === 'string') return original.kernelFunc(args);
      (args.backend as unknown as WasmBackend).incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype } as never;
    },
  });
  return true;
}

/** Test-only: puts tfjs-backend-wasm's copying Identity back. */
export function restoreCopyingWasmClones(): void {
  if (copying === null) return;
  unregisterKernel('Identity', 'wasm');
  registerKernel(copying);
  copying = null;
}
