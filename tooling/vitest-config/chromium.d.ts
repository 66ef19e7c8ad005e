/** The browser binary; OVQ_CHROMIUM overrides Debian's /usr/bin/chromium. */
export const CHROMIUM: string;
/** Launch flags of every browser test: no sandbox (root in CI), no background traffic. */
export const CHROMIUM_ARGS: string[];
/** The same with WebGPU exposed (`navigator.gpu`; SwiftShader without a GPU). */
export const CHROMIUM_WEBGPU_ARGS: string[];
