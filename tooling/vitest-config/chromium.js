// Headless Chromium for the browser tests (driven by playwright-core): where it is and how to
// launch it so that it never reaches the network. `.ci/webgpu-setup.sh` installs Debian's chromium.

/** The browser binary; OVQ_CHROMIUM overrides Debian's /usr/bin/chromium. */
export const CHROMIUM = process.env.OVQ_CHROMIUM ?? '/usr/bin/chromium';

/** Launch flags of every browser test: no sandbox (root in CI), no background traffic. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** The same with WebGPU exposed (`navigator.gpu`; SwiftShader without a GPU). */
export const CHROMIUM_WEBGPU_ARGS = ['--enable-unsafe-webgpu', ...CHROMIUM_ARGS];
