// What ../browser.test.ts and the page (page.ts) exchange: plain arrays both ways. Kept free of
// runtime imports so that Node can load it without TensorFlow.js.
import type { ovqAttention, softmaxAttention } from '@ovq/tfjs';

/** [batch, heads, seqLen, keyDim, valueDim] */
export type Dims = [number, number, number, number, number];

export type MixerRequest = {
  dims: Dims;
  q: number[];
  k: number[];
  v: number[];
  /** The cotangent of the output: the gradients are those of ⟨dOut, output⟩. */
  dOut: number[];
} & (
  | { op: 'ovqAttention'; beta: number[]; config: Parameters<typeof ovqAttention>[4] }
  | { op: 'softmaxAttention'; config: Parameters<typeof softmaxAttention>[3] }
);

export type MixerResult = {
  backend: string;
  output: number[];
  /** One per differentiable input, in argument order (q, k, v, then β for OVQ). */
  grads: number[][];
  /** Tensors left behind by the forward + backward (and the inputs, which are disposed). */
  leaked: number;
};

export type ModelRequest = {
  batch: number;
  seqLen: number;
  /** Token ids, [batch, seqLen]. */
  tokens: number[];
  /** Next-token-style class ids, [batch, seqLen]. */
  targets: number[];
};

export type ModelResult = {
  backend: string;
  predicted: number[];
  predictedByLoaded: number[];
  /** Weights of the loaded model that are missing or differ from the saved model's, by name. */
  notRestored: string[];
  layerConfigs: string[];
  loadedLayerConfigs: string[];
  trainableWeights: string[];
  /** Names of the trainable weights that one optimizer step left unchanged. */
  unchangedByStep: string[];
  /** Tensors created and kept by a second optimizer step (the first one creates Adam's slots). */
  leakedByStep: number;
  /** Tensors left after everything is disposed, relative to the start. */
  leaked: number;
};

export const VOCAB = 12;
export const CLASSES = 6;
