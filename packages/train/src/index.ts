// @ovq/train: tasks, hybrid models and the training loop for OVQ-attention experiments.
export * from './checkpoint/checkpoint.js';
export * from './checkpoint/crc32.js';
export * from './diagnostics/echo-cut.js';
export * from './diagnostics/needle-trace.js';
export * from './loop/loss.js';
export * from './loop/sample.js';
export * from './loop/task-spec.js';
export * from './loop/train.js';
export * from './loop/validate.js';
export * from './model/backend.js';
export * from './model/decoder.js';
export * from './model/mixers.js';
export * from './model/tfjs-mixers.js';
export * from './optim/adamw.js';
export * from './regime/index.js';
export * from './tasks/index.js';
