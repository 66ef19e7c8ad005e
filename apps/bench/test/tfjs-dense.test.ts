import { describe, expect, it } from 'vitest';
import { tfjsImplementations } from '../src/registry/tfjs.js';

describe('dense tfjs-wasm attention (the softmax yardstick)', () => {
  it('matches the float64 softmax reference across query blocks', async () => {
    const { implementations, skipped } = await tfjsImplementations('dense');
    expect(skipped, JSON.stringify(skipped)).toEqual([]);
    const [dense] = implementations;
    expect(dense.name).toBe('softmax/tfjs-wasm-dense');
    const check = await dense.check();
    expect(check.ok, check.detail).toBe(true);
    expect(check.forwardRms!).toBeLessThan(1e-5);
  });
});
