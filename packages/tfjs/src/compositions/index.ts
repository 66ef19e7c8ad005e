// The mixers as compositions of tfjs ops: the route on backends without host kernels (webgpu).
// Each runs on the backend's own device; gradients come from tfjs autodiff or a customGrad.
export { decayLinearComposite } from './decay-linear.js';
export { gatedDeltaNetComposite } from './gated-deltanet.js';
export { kvmComposite } from './kvm.js';
export { linearComposite } from './linear.js';
export { l2Normalize } from './shared.js';
export { softmaxComposite } from './softmax.js';
export { vqComposite } from './vq.js';
