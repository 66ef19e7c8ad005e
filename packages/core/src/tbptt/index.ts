// Truncated backprop through time: the state-gradient types the backward functions take and return.
export type {
  OvqStateGradient,
  OvqStateGradientInput,
  TbpttOptions,
} from './state-gradient.js';
