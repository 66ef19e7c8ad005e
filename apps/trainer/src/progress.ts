// Training progress for humans: a redrawn bar on a terminal, plain periodic lines elsewhere (CI
// logs, pipes), so logs stay readable in both.

export type ProgressSink = { write(text: string): void; isTTY?: boolean };

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
}

function rate(tokensPerSecond: number): string {
  return tokensPerSecond >= 1000
    ? `${(tokensPerSecond / 1000).toFixed(1)}k`
    : tokensPerSecond.toFixed(0);
}

export class Progress {
  private readonly sink: ProgressSink;
  private readonly tty: boolean;
  private readonly every: number;
  private lastLength = 0;

  constructor(sink: ProgressSink, options: { lineEvery?: number } = {}) {
    this.sink = sink;
    this.tty = sink.isTTY === true;
    this.every = options.lineEvery ?? 10;
  }

  /** One training step finished. */
  step(e: {
    step: number;
    steps: number;
    loss: number;
    tokensPerSecond: number;
    elapsed: number;
  }): void {
    const eta = (e.elapsed / e.step) * (e.steps - e.step);
    const stats = `step ${e.step}/${e.steps}  loss ${e.loss.toFixed(4)}  ${rate(e.tokensPerSecond)} tok/s  ETA ${duration(eta)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((width * e.step) / e.steps);
      const line = `[${'='.repeat(filled)}${' '.repeat(width - filled)}] ${stats}`;
      this.sink.write(`\r${line}${' '.repeat(Math.max(0, this.lastLength - line.length))}`);
      this.lastLength = line.length;
      if (e.step === e.steps) this.newline();
    } else if (e.step % this.every === 0 || e.step === e.steps) {
      this.sink.write(`${stats}\n`);
    }
  }

  /** A message that must not be overwritten by the bar. */
  message(text: string): void {
    if (this.tty && this.lastLength > 0) this.newline();
    this.sink.write(`${text}\n`);
  }

  private newline(): void {
    this.sink.write('\n');
    this.lastLength = 0;
  }
}
