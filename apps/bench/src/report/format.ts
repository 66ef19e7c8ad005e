// Number formatting and a plain-text table printer for the terminal (and the closing note).

export function si(x: number | null | undefined, digits = 3): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '—';
  const units = ['', 'k', 'M', 'G', 'T'];
  let u = 0;
  let v = x;
  while (Math.abs(v) >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${Number(v.toPrecision(digits))}${units[u]}`;
}

export function mib(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '—';
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** KiB below 1 MiB, MiB above: for byte counts that span both. */
export function bytes(b: number | null | undefined): string {
  if (b === null || b === undefined || !Number.isFinite(b)) return '—';
  return Math.abs(b) < 2 ** 20 ? `${(b / 1024).toFixed(0)} KiB` : mib(b);
}

export function pct(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '—' : `${(100 * x).toFixed(1)}%`;
}

export function sci(x: number | null | undefined): string {
  return x === null || x === undefined ? '—' : Number.isFinite(x) ? x.toExponential(1) : String(x);
}

export type Column = { title: string; width: number; align?: 'left' | 'right' };

/** A fixed-width table that can print its header once and rows as they arrive. */
export class TextTable {
  constructor(readonly columns: Column[]) {}

  header(): string {
    const head = this.row(this.columns.map((c) => c.title));
    return `${head}\n${'-'.repeat(head.length)}`;
  }

  row(cells: string[]): string {
    return this.columns
      .map((c, i) => {
        const cell = cells[i] ?? '';
        return c.align === 'right' ? cell.padStart(c.width) : cell.padEnd(c.width);
      })
      .join('  ')
      .trimEnd();
  }
}

/**
 * Prints results to stdout. Progress goes to stderr, stamped with the seconds since the run
 * started: on a terminal as one rewritten line; in a log, one line per step (callers announce
 * steps, not inner iterations), so no step runs silently and stdout stays clean.
 */
export type Reporter = { line(text: string): void; progress(text: string, long?: boolean): void };

export function createConsoleReporter(): Reporter {
  const start = performance.now();
  return {
    line(text) {
      if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
      console.log(text);
    },
    progress(text) {
      const stamp = `[${((performance.now() - start) / 1000).toFixed(0)} s] ${text}`;
      if (process.stderr.isTTY) process.stderr.write(`\r\x1b[K${stamp.slice(0, 150)}`);
      else process.stderr.write(`… ${stamp}\n`);
    },
  };
}

export const consoleReporter: Reporter = createConsoleReporter();

export const silentReporter: Reporter = { line() {}, progress() {} };
