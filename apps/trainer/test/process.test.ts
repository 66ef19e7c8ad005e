// The CLI as a real process: real signals, a real SIGKILL, real stdout. Each spawn loads the
// TypeScript sources through test/cli-process.mjs (about 2 s of CPU to start), so there are three.
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyCheckpoint } from '@ovq/train';
import { describe, expect, it } from 'vitest';
import { run, TINY, tempDir } from './helpers.js';

const LAUNCHER = join(import.meta.dirname, 'cli-process.mjs');
const BANNER = /Hi, looks like you are running TensorFlow\.js/;
const ARGS = [...TINY, '--steps', '12', '--eval-every', '6'];

type Exit = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

function cli(argv: string[], whileRunning?: (child: ChildProcess, stdout: () => string) => void) {
  return new Promise<Exit>((resolve, reject) => {
    const child = spawn(process.execPath, [LAUNCHER, ...argv], { stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
    whileRunning?.(child, () => stdout);
  });
}

const stepsLogged = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r.type === 'step')
    .map((r) => r.step);

const sameBytes = (a: string, b: string) => Buffer.compare(readFileSync(a), readFileSync(b)) === 0;

describe('ovq-train as a process', () => {
  it('SIGTERM mid-run exits 130 with a checkpoint, SIGKILL of the resumed run loses at most the step in flight, and the run then ends byte-identical to an uninterrupted one', async () => {
    // The uninterrupted reference runs in-process (same code, same cpu backend, one start-up less).
    const straight = tempDir();
    expect((await run(['run', ...ARGS, '--out', straight])).code).toBe(0);

    // SIGTERM as soon as training starts: the step in flight finishes and is saved.
    const out = tempDir();
    const term = await cli(['run', ...ARGS, '--out', out], (child, stdout) => {
      const poll = setInterval(() => {
        if (stdout().includes('training ')) {
          clearInterval(poll);
          child.kill('SIGTERM');
        }
      }, 5);
    });
    expect(term.code).toBe(130);
    expect(term.stdout).toMatch(/^training swa,ovq/);
    expect(`${term.stdout}${term.stderr}`).not.toMatch(BANNER);
    expect(term.stderr).toMatch(/SIGTERM: finishing the current step and writing a checkpoint/);
    const savedAt = Number(/interrupted at step (\d+)\/12/.exec(term.stdout)?.[1]);
    expect(savedAt).toBeGreaterThanOrEqual(1);
    expect(savedAt).toBeLessThanOrEqual(9); // leaves steps for the SIGKILL below
    expect(stepsLogged(out)).toEqual(Array.from({ length: savedAt }, (_, i) => i + 1));

    // Resume with a checkpoint every step, and SIGKILL it (no handler runs) once it has logged
    // two more steps: at most the step in flight (logged, maybe not yet saved) is lost.
    const metrics = join(out, 'metrics.jsonl');
    const kill = await cli(
      ['run', '--out', out, '--resume', '--backend', 'cpu', '--checkpoint-every', '1'],
      (child) => {
        const poll = setInterval(() => {
          if (readFileSync(metrics, 'utf8').includes(`"step":${savedAt + 2},`)) {
            clearInterval(poll);
            child.kill('SIGKILL');
          }
        }, 2);
      },
    );
    expect(kill.signal).toBe('SIGKILL');
    const killedAt = verifyCheckpoint(new Uint8Array(readFileSync(join(out, 'ckpt.bin')))).header
      .step;
    const logged = readFileSync(metrics, 'utf8')
      .split('\n')
      .flatMap((l) => {
        try {
          return [JSON.parse(l)];
        } catch {
          return []; // a line cut short by the kill
        }
      })
      .filter((r) => r.type === 'step')
      .map((r) => r.step as number);
    expect(killedAt).toBeGreaterThan(savedAt);
    expect(killedAt).toBeGreaterThanOrEqual(Math.max(...logged) - 1);

    const resumed = await cli(['run', '--out', out, '--resume', '--backend', 'cpu']);
    expect(resumed.code).toBe(0);
    expect(sameBytes(join(out, 'ckpt.bin'), join(straight, 'ckpt.bin'))).toBe(true);
    expect(stepsLogged(out)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(readdirSync(out).filter((n) => n.includes('.tmp-'))).toEqual([]);
  }, 300_000); // four trainer processes in a row: slow on a loaded 2-core machine
});
