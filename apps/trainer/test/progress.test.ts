import { describe, expect, it } from 'vitest';
import { Progress } from '../src/progress.js';

function capture(isTTY: boolean) {
  const out: string[] = [];
  return { sink: { isTTY, write: (s: string) => out.push(s) }, out };
}

describe('progress', () => {
  const step = (i: number) => ({
    step: i,
    steps: 20,
    loss: 1 / i,
    tokensPerSecond: 2500,
    elapsed: i * 0.5,
  });

  it('prints plain lines every N steps when not a terminal', () => {
    const { sink, out } = capture(false);
    const p = new Progress(sink, { lineEvery: 10 });
    for (let i = 1; i <= 20; i++) p.step(step(i));
    expect(out).toEqual([
      'step 10/20  loss 0.1000  2.5k tok/s  ETA 5s\n',
      'step 20/20  loss 0.0500  2.5k tok/s  ETA 0s\n',
    ]);
  });

  it('redraws one bar on a terminal and ends it with a newline', () => {
    const { sink, out } = capture(true);
    const p = new Progress(sink);
    p.step(step(5));
    p.message('eval: accuracy 0.5');
    p.step(step(20));
    expect(out[0]).toMatch(
      /^\r\[======\s+\] step 5\/20 {2}loss 0\.2000 {2}2\.5k tok\/s {2}ETA 8s$/,
    );
    expect(out[1]).toBe('\n');
    expect(out[2]).toBe('eval: accuracy 0.5\n');
    expect(out[3]).toMatch(/^\r\[========================\] step 20\/20/);
    expect(out.at(-1)).toBe('\n');
  });
});
