// @ovq/train: tasks, hybrid models and the training loop for OVQ-attention experiments.
export * from './tasks/index.js';
