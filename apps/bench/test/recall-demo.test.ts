import { describe, expect, it } from 'vitest';
import { DEFAULT_RECALL_DEMO, formatRecallDemo, runRecallDemo } from '../src/index.js';

describe('recall demo (the main job until the benchmark runner lands)', () => {
  it('OVQ recalls most facts with a fraction of softmax attention state', () => {
    const result = runRecallDemo({ ...DEFAULT_RECALL_DEMO, seqLen: 2048 });
    expect(result.softmax.recall).toBe(1);
    expect(result.ovq.recall).toBeGreaterThan(0.6);
    expect(result.ovq.stateNumbers).toBe(256 * 65 + 64 * 64);
    expect(result.softmax.stateNumbers).toBe(2048 * 64);
    expect(result.ovq.dictionarySize).toBeLessThanOrEqual(256);
    expect(formatRecallDemo(result)).toMatch(/OVQ keeps 0\.1\d\d× the softmax state/);
  });
});
