// Kernel choice: WASM SIMD (default where available) or the JS kernels.
export { type OvqKernelsSetting, ovqKernels, setOvqKernels } from './simd.js';
