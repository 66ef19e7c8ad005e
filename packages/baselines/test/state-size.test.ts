import { describe, expect, it } from 'vitest';
import {
  decayLinearStateSize,
  gatedDeltaNetStateSize,
  kvmStateSize,
  linearStateSize,
  MIXERS,
  softmaxStateSize,
  stateSize,
  vqStateSize,
} from '../src/index.js';

describe('stateSize(mixer, dims, config, T) (ALGORITHM.md §6)', () => {
  const dims = { keyDim: 64, valueDim: 64 };
  it.each([1, 1000, 65536])('T%i: the generic entry point agrees with each mixer', (T) => {
    expect(stateSize('softmax', dims, {}, T)).toBe(softmaxStateSize(dims, {}, T));
    expect(stateSize('softmax', dims, {}, T)).toBe(T * 128);
    expect(stateSize('softmax', dims, { window: 512 }, T)).toBe(Math.min(T, 512) * 128);
    expect(stateSize('linear', dims, undefined, T)).toBe(linearStateSize(dims, undefined, T));
    expect(stateSize('decay-linear', dims, undefined, T)).toBe(
      decayLinearStateSize(dims, undefined, T),
    );
    expect(stateSize('gated-deltanet', dims, {}, T)).toBe(gatedDeltaNetStateSize(dims, {}, T));
    expect(stateSize('gated-deltanet', dims, {}, T)).toBe(64 * 64);
    const vq = { codebookSize: 512, blockLength: 64 };
    expect(stateSize('vq', dims, vq, T)).toBe(vqStateSize(dims, vq, T));
    const kvm = { window: 64, beta: 8, budget: { kind: 'sqrt', scale: 4 } } as const;
    expect(stateSize('kvm', dims, kvm, T)).toBe(kvmStateSize(dims, kvm, T));
  });

  it('rejects an unknown mixer by name', () => {
    expect(MIXERS).toHaveLength(6);
    expect(() => stateSize('mamba' as never, dims, undefined as never, 10)).toThrow(
      'mixer: got "mamba"; expected one of softmax, linear',
    );
  });
});
