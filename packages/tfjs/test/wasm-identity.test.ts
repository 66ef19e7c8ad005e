// useSharedWasmClones: tfjs clones on wasm share the buffer instead of copying it. Gradients of a
// small training step (dense products with custom gradients, a host mixer, tfjs autodiff ops) are
// the same bytes with and without it, clones keep their values after the original is disposed,
// and no tensor or byte is left behind.
import { createRng } from '@ovq/core/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explicitMatMul, softmaxAttention, useSharedWasmClones } from '../src/index.js';
import { restoreCopyingWasmClones } from '../src/kernels/wasm-identity.js';
import { randomTensor, tf, useBackend } from './backends.js';

const bytes = (t: tf.Tensor) => {
  const x = t.dataSync() as Float32Array;
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString('base64');
};

/** Loss and gradients (as bytes) of a small step: two dense products around an SWA mixer. */
function step(): string[] {
  const rng = createRng(4);
  const x = randomTensor(rng, [2 * 2 * 12, 8]);
  const w1 = randomTensor(rng, [8, 8]);
  const w2 = randomTensor(rng, [8, 8]);
  const v1 = tf.variable(w1, true, 'w1');
  const v2 = tf.variable(w2, true, 'w2');
  const grads = tf.variableGrads(() => {
    const h = tf.relu(explicitMatMul(x, v1));
    const q = tf.reshape(h, [2, 2, 12, 8]);
    const y = softmaxAttention(q, q, q, { window: 3 });
    return tf.sum(tf.square(explicitMatMul(tf.reshape(y, [48, 8]), v2, false, true))) as tf.Scalar;
  }, [v1, v2]);
  const out = [bytes(grads.value), bytes(grads.grads.w1), bytes(grads.grads.w2)];
  tf.dispose([x, w1, w2, grads.value, ...Object.values(grads.grads)]);
  tf.disposeVariables();
  return out;
}

describe('useSharedWasmClones', () => {
  beforeAll(() => useBackend('wasm'));
  afterAll(async () => {
    restoreCopyingWasmClones();
    await tf.setBackend('cpu');
  });

  it('a training step gives the same bytes and leaves no tensor or byte behind', () => {
    restoreCopyingWasmClones();
    const copied = step();
    const before = tf.memory();
    expect(useSharedWasmClones()).toBe(true);
    expect(useSharedWasmClones()).toBe(true); // idempotent
    const shared = step();
    expect(shared).toEqual(copied);
    const after = tf.memory();
    expect(after.numTensors).toBe(before.numTensors);
    expect(after.numBytes).toBe(before.numBytes);
    expect(tf.engine().backend.numDataIds()).toBe(before.numDataBuffers);
  });

  it('a clone shares the buffer and keeps its values after the original is disposed', () => {
    useSharedWasmClones();
    const buffers = () => tf.engine().backend.numDataIds();
    const start = buffers();
    const a = tf.tensor([1, 2, 3, 4], [2, 2]);
    const c = tf.clone(a);
    expect(buffers()).toBe(start + 1); // one buffer, two tensors
    a.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3, 4]);
    c.dispose();
    expect(buffers()).toBe(start);
    const s = tf.tensor(['x', 'y']);
    const sc = tf.clone(s);
    s.dispose();
    expect(sc.dataSync()).toEqual(['x', 'y']);
    sc.dispose();
  });
});
