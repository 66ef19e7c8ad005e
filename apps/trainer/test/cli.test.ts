import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { buildRunConfig } from '../src/config.js';
import { main } from '../src/main.js';
import { run, tempDir } from './helpers.js';

function captureStdout() {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => {
    out.push(String(s));
    return true;
  });
  return { out, restore: () => spy.mockRestore() };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('ovq-train', () => {
  it('--help lists the options of each command', async () => {
    for (const [command, flag] of [
      ['run', '--mixers'],
      ['eval', '--lengths'],
      ['sample', '--temperature'],
      ['table', '--task'],
    ]) {
      const { out, restore } = captureStdout();
      expect(await main([command, '--help'])).toBe(0);
      restore();
      expect(out.join('')).toContain(`usage: ovq-train ${command}`);
      expect(out.join('')).toContain(flag);
    }
  });

  it('table prints the Markdown tables of a results file; a bad file or task exits 2 naming the flag', async () => {
    const dir = tempDir();
    const rows = [0, 1].flatMap((seed) =>
      ['0', '1'].map((d) => ({
        task: 'niah',
        mixers: 'swa,kvm',
        budget: 4096,
        stateNumbers: 3868,
        trainLen: 512,
        evalLen: 2048,
        seed,
        lr: 0.003,
        metric: `accuracy@depth=${d}`,
        value: seed === 0 ? 0.5 : 0.25,
        command: 'ovq-train sweep …',
      })),
    );
    const file = join(dir, 'results.json');
    writeFileSync(
      file,
      JSON.stringify({ schema: 'ovq-results/1', commit: 't', machine: 't', rows }),
    );
    const ok = await run(['table', '--results', file]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(
      '| swa,kvm @ 4096 | 3868 / 3868 | 2 (0, 1) | 0.003 | 37.5 ± 17.7 |',
    );
    const noTask = await run(['table', '--results', file, '--task', 'mqar']);
    expect(noTask.code).toBe(2);
    expect(noTask.stderr).toContain(
      'ovq-train: --task: task is "mqar"; expected one of the file\'s tasks (niah)',
    );
    writeFileSync(file, JSON.stringify({ schema: 'ovq-bench/1', rows }));
    const wrong = await run(['table', '--results', file]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(
      /^ovq-train: --results: .*schema is "ovq-bench\/1"; expected "ovq-results\/1"/,
    );
    const missing = await run(['table']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--results: required/);
  });

  it('bad configs fail before any training, saying what to change', () => {
    expect(() => buildRunConfig({ mixers: 'swa,mamba' })).toThrow(/unknown mixer "mamba"/);
    expect(() => buildRunConfig({ task: 'mqar', len: '63' })).toThrow(
      /seqLen is 63; expected an even number/,
    );
    expect(() => buildRunConfig({ task: 'byte-lm', corpus: '/no/such/corpus' })).toThrow(
      /--corpus: \/no\/such\/corpus does not exist/,
    );
    expect(() => buildRunConfig({ config: '/no/such.json' })).toThrow(
      /--config: \/no\/such\.json does not exist/,
    );
    expect(() => buildRunConfig({ 'd-model': '30', heads: '4' })).toThrow(
      /--d-model: 30 is not divisible by --heads 4/,
    );
    expect(() => buildRunConfig({ backend: 'tpu' })).toThrow(/--backend: got "tpu"/);
    expect(() => buildRunConfig({ lr: 'fast' })).toThrow(
      /--lr: got "fast"; expected a finite number > 0/,
    );
    expect(() => buildRunConfig({ task: 'sudoku' })).toThrow(/--task: got "sudoku"; choose mqar/);
    const dir = mkdtempSync(join(tmpdir(), 'ovq-cfg-'));
    writeFileSync(join(dir, 'bad.json'), '{ "steps": ');
    expect(() => buildRunConfig({ config: join(dir, 'bad.json') })).toThrow(/is not valid JSON/);
  });

  it('a JSON config is read and flags override it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ovq-cfg-'));
    const file = join(dir, 'run.json');
    writeFileSync(
      file,
      JSON.stringify({ steps: 7, task: { name: 'basic-recall', vocabSize: 40, numPairs: 3 } }),
    );
    const { config } = buildRunConfig({ config: file, len: '32' });
    expect(config.steps).toBe(7);
    expect(config.seqLen).toBe(32);
    expect(config.task).toEqual({ name: 'basic-recall', vocabSize: 40, numPairs: 3 });
    // Every task name keeps its name (none falls through to another task's spec).
    expect(buildRunConfig({ task: 'niah', len: '64' }).config.task.name).toBe('niah');
    expect(buildRunConfig({ task: 'byte-lm' }).config.task.name).toBe('byte-lm');
  });

  it('run writes config, metrics and a checkpoint that eval reads back', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ovq-run-'));
    const { out: lines, restore } = captureStdout();
    const args = [
      '--task',
      'mqar',
      '--vocab',
      '16',
      '--pairs',
      '2',
      '--len',
      '16',
      '--batch',
      '2',
      '--steps',
      '4',
    ];
    const code = await main(['run', ...args, '--eval-every', '2', '--d-model', '8', '--out', out]);
    const evalCode = await main([
      'eval',
      '--checkpoint',
      join(out, 'ckpt.bin'),
      '--lengths',
      '1,2',
      '--batches',
      '1',
    ]);
    restore();
    const refused = await run(['eval', '--checkpoint', join(out, 'ckpt.bin'), '--depths', '0.5']);
    expect(code).toBe(0);
    expect(evalCode).toBe(0);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /--depths: this checkpoint was trained on mqar; depths apply to niah models only/,
    );
    const needles = await run(['eval', '--checkpoint', join(out, 'ckpt.bin'), '--needles', '2']);
    expect(needles.code).toBe(2);
    expect(needles.stderr).toMatch(
      /--needles: this checkpoint was trained on mqar; needles apply to niah models only/,
    );
    const noNeedle = await run(['needle-trace', '--checkpoint', join(out, 'ckpt.bin')]);
    expect(noNeedle.code).toBe(2);
    expect(noNeedle.stderr).toMatch(
      /--checkpoint: needle-trace needs a niah model; this one was trained on mqar/,
    );
    expect(existsSync(join(out, 'config.json'))).toBe(true);
    const metrics = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n');
    expect(metrics.filter((l) => l.includes('"type":"step"'))).toHaveLength(4);
    const text = lines.join('');
    expect(text).toMatch(/step 4\/4 {2}loss \d+\.\d{4}/);
    expect(text).toMatch(/ckpt\.bin: step 4, swa,ovq on mqar/);
    expect(text).toMatch(/len {4}32 {2}loss/);
    expect(text).toMatch(/accuracy by position quarter: (—|\d+\.\d%) \| /);
    expect(text).toMatch(
      /layer 1 \(ovq\) dictionary: \d+\.\d\/64 rows, counts min\/mean\/max \d+\/\d+\.\d\/\d+, usage entropy \d\.\d\d, never updated/,
    );
  });

  it('eval --depths scores a NIAH model with the needle at each depth, at every length', async () => {
    const out = tempDir('ovq-niah-');
    const args = [
      '--task',
      'niah',
      '--len',
      '32',
      '--batch',
      '2',
      '--steps',
      '2',
      '--d-model',
      '8',
    ];
    const trained = await run(['run', ...args, '--eval-every', '2', '--out', out]);
    // The same cells for eval and needle-trace: depths 0 and 1 at 32 and 64 tokens, one batch.
    const cells = [
      ...['--checkpoint', join(out, 'ckpt.bin')],
      ...['--depths', '0,1', '--lengths', '1,2', '--batches', '1'],
    ];
    const scored = await run(['eval', ...cells]);
    // NIAH-MK at test time: three needles, the asked one at each depth; 0 needles is refused.
    const several = await run(['eval', ...cells, '--needles', '3']);
    expect(several.code).toBe(0);
    expect(several.stdout).toMatch(/ckpt\.bin: step 2, swa,ovq on niah with 3 needles/);
    expect(several.stdout.match(/^ *len +(32|64) +loss .*accuracy/gm)).toHaveLength(4);
    expect(
      several.stdout.match(
        /^ +answer tokens from the asked needle \d+\.\d%, from the other needle most like the answer \d+\.\d%$/gm,
      ),
    ).toHaveLength(4);
    const none = await run(['eval', ...cells, '--needles', '0']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--needles/);
    const traceFile = join(out, 'trace.json');
    const traced = await run(['needle-trace', ...cells, '--out', traceFile]);
    expect(trained.code).toBe(0);
    expect(scored.code).toBe(0);
    expect(traced.code).toBe(0);
    // 2 lengths × 2 depths × (1 OVQ layer × 2 heads) rows.
    const rows = traced.stdout.match(/^\| (32|64) \| [01] \| 1\.[01] \| .*\|$/gm) ?? [];
    expect(rows).toHaveLength(8);
    // 20 columns: key twins … their mass numbers, the copies' and filler's distances numbers or
    // '–' (none absorbed), β … needle key cosine numbers.
    for (const row of rows) {
      const cells = row.split('|').slice(1, -1);
      expect(cells).toHaveLength(20);
      for (const cell of [...cells.slice(10, 13), ...cells.slice(15)])
        expect(Number.isFinite(Number(cell))).toBe(true);
      expect(cells[13].trim()).toMatch(/^(–|\d+\.\d{3})$/);
      expect(cells[14].trim()).toMatch(/^(–|\d+\.\d{3}) \/ (–|\d+\.\d{3})$/);
    }
    const saved = JSON.parse(readFileSync(traceFile, 'utf8'));
    type Saved = {
      seqLen: number;
      depth: number;
      head: number;
      needleMass: number;
      similarityMargin: number;
      beta: number;
      copyDistance: number | null;
    };
    const traces: Saved[] = saved.traces;
    const perCell = (seqLen: number, depth: number) =>
      traces.filter((t) => t.seqLen === seqLen && t.depth === depth);
    // Every (length, depth) cell has one trace per evaluated sequence and head.
    for (const [seqLen, depth] of [
      [32, 0],
      [32, 1],
      [64, 0],
      [64, 1],
    ]) {
      const cell = perCell(seqLen, depth);
      expect(cell.length).toBe(traces.length / 4);
      expect(cell.filter((t) => t.head === 0).length).toBe(cell.length / 2);
    }
    expect(traces.every((t) => t.needleMass > 0 && t.needleMass <= 1)).toBe(true);
    expect(traces.every((t) => Number.isFinite(t.similarityMargin) && t.beta > 0)).toBe(true);
    // The needle's copies: at depth 0 of 64 tokens, tokens 16–17 are absorbed (chunk 16) into a
    // dictionary that has rows (a distance ≥ 0); at depth 1 the question follows the needle, so
    // there are none (NaN, saved as null).
    for (const t of perCell(64, 0)) expect(t.copyDistance).toBeGreaterThanOrEqual(0);
    for (const t of traces.filter((t) => t.depth === 1)) expect(t.copyDistance).toBeNull();
    // Test-time capacity ×4: the header says so, the file records it, and no cell has fewer rows.
    const wider = join(out, 'trace-x4.json');
    const scaled = await run(['needle-trace', ...cells, '--eval-capacity', '4', '--out', wider]);
    expect(scaled.code).toBe(0);
    expect(scaled.stdout).toMatch(/ckpt\.bin: step 2, swa,ovq on niah, capacity ×4/);
    const x4 = JSON.parse(readFileSync(wider, 'utf8'));
    expect(x4.capacityScale).toBe(4);
    const rowsOf = (list: { rows: number }[]) => list.map((t) => t.rows);
    const before = rowsOf(traces as unknown as { rows: number }[]);
    rowsOf(x4.traces).forEach((rows, i) => {
      expect(rows).toBeGreaterThanOrEqual(before[i]);
    });
    // The echo cut: the file records it; at depth 1 the question follows the needle, so nothing
    // is cut and every trace is the plain one; at depth 0 the haystack after the needle is cut.
    const cutFile = join(out, 'trace-cut.json');
    const cut = await run(['needle-trace', ...cells, '--cut-echo', '--out', cutFile]);
    expect(cut.code).toBe(0);
    expect(cut.stdout).toMatch(/ckpt\.bin: step 2, swa,ovq on niah, echo cut/);
    const cutSaved = JSON.parse(readFileSync(cutFile, 'utf8'));
    expect(cutSaved.cutEcho).toBe(true);
    expect(saved.cutEcho).toBe(false);
    const cutTraces: Saved[] = cutSaved.traces;
    const mass = (list: Saved[], depth: number) =>
      list.filter((t) => t.depth === depth).map((t) => t.needleMass);
    expect(mass(cutTraces, 1)).toEqual(mass(traces, 1));
    expect(mass(cutTraces, 0)).not.toEqual(mass(traces, 0));
    // eval --cut-echo scores the same cut: its accuracy is the trace's, per length and depth.
    const cutScore = await run(['eval', ...cells, '--cut-echo']);
    expect(cutScore.code).toBe(0);
    const cutLines = [
      ...cutScore.stdout.matchAll(
        /len +(\d+) {2}accuracy (\d+\.\d)% \(echo cut, (\d+) sequences\)/g,
      ),
    ];
    expect(cutLines).toHaveLength(4);
    // Printed depth by depth (0, then 1), each at both lengths.
    for (const [i, [, seqLen, accuracy]] of cutLines.entries()) {
      const depth = i < 2 ? 0 : 1;
      const heads0 = (cutSaved.traces as (Saved & { correct: number })[]).filter(
        (t) => t.seqLen === Number(seqLen) && t.depth === depth && t.head === 0,
      );
      const want = heads0.reduce((a, t) => a + t.correct, 0) / heads0.length;
      expect(accuracy).toBe((100 * want).toFixed(1));
    }
    // Novelty spawn at test time: λ = 4 (beyond any squared distance of unit keys) scores as the
    // plain model; a tiny λ fills the capacity, so no traced cell holds fewer rows.
    const never = await run(['eval', ...cells, '--eval-spawn-distance', '4']);
    expect(never.code).toBe(0);
    expect(never.stdout).toMatch(/ckpt\.bin: step 2, swa,ovq on niah, novelty spawn at 4/);
    const scores = (text: string) => [...text.matchAll(/len +\d+ {2}loss \S+ {2}accuracy \S+/g)];
    expect(scores(never.stdout).map(String)).toEqual(scores(scored.stdout).map(String));
    expect(scores(never.stdout)).toHaveLength(4);
    const novelFile = join(out, 'trace-novelty.json');
    const novel = await run([
      'needle-trace',
      ...cells,
      '--eval-spawn-distance',
      '1e-6',
      '--out',
      novelFile,
    ]);
    expect(novel.code).toBe(0);
    const novelSaved = JSON.parse(readFileSync(novelFile, 'utf8'));
    expect(novelSaved.spawnDistance).toBe(1e-6);
    rowsOf(novelSaved.traces).forEach((rows, i) => {
      expect(rows).toBeGreaterThanOrEqual(before[i]);
    });
    expect(rowsOf(novelSaved.traces)).not.toEqual(before);
    // A reserve: saturating growth toward 64 − 60 = 4 rows; λ = 4 never fills the rest, so no
    // traced cell holds more than 3 rows (⌊4τ/(4 + τ)⌋ < 4). It needs novelty spawn.
    const reservedFile = join(out, 'trace-reserve.json');
    const reserved = await run([
      'needle-trace',
      ...cells,
      ...['--eval-spawn-distance', '4', '--eval-reserve', '60', '--out', reservedFile],
    ]);
    expect(reserved.code).toBe(0);
    expect(reserved.stdout).toMatch(/novelty spawn at 4, 60 rows reserved for it/);
    const reservedSaved = JSON.parse(readFileSync(reservedFile, 'utf8'));
    expect(reservedSaved.reserve).toBe(60);
    expect(Math.max(...rowsOf(reservedSaved.traces))).toBeLessThanOrEqual(3);
    expect(Math.max(...before)).toBeGreaterThan(3);
    const unfilled = await run(['eval', ...cells, '--eval-reserve', '2']);
    expect(unfilled.code).toBe(2);
    expect(unfilled.stderr).toMatch(
      /--eval-reserve: reserved rows are filled only by novelty spawn/,
    );
    const whole = await run([
      'eval',
      ...cells,
      '--eval-spawn-distance',
      '1',
      '--eval-reserve',
      '64',
    ]);
    expect(whole.code).toBe(2);
    expect(whole.stderr).toMatch(
      /--eval-reserve: got 64; expected fewer rows than the OVQ capacity 64/,
    );
    const lonely = await run(['needle-trace', ...cells, '--decoy']);
    expect(lonely.code).toBe(2);
    expect(lonely.stderr).toMatch(/--decoy: a control for --cut-echo; pass both, or neither/);
    const bad = await run([
      'needle-trace',
      '--checkpoint',
      join(out, 'ckpt.bin'),
      '--eval-capacity',
      '0',
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--eval-capacity: got "0"; expected a finite number > 0/);
    // One header per depth, each followed by both lengths.
    expect(scored.stdout).toMatch(
      /needle depth 0\n.*?len {4}32 {2}loss.*?len {4}64 {2}loss.*?needle depth 1\n.*?len {4}32 {2}loss.*?len {4}64 {2}loss/s,
    );
  });
});
