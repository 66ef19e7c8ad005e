// Flag parsing and validation shared by every command. A bad command line is a UsageError (exit
// code 2) whose message names the flag, the value and what was expected; node:util's parseArgs
// messages are replaced by ones that say what to do.
import { parseArgs } from 'node:util';
import { didYouMean } from '@ovq/train';

/** The command line or a config file is wrong: fix it and run again (exit code 2). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type FlagTable = Record<string, { type: 'string' | 'boolean'; description: string }>;

export type ParsedFlags<T extends FlagTable> = {
  [K in keyof T]?: T[K]['type'] extends 'boolean' ? boolean : string;
};

/** Parses `args` against `table`; unknown flags, stray words and missing values are UsageErrors. */
export function parseFlags<T extends FlagTable>(
  command: string,
  args: string[],
  table: T,
): ParsedFlags<T> {
  // "--lr -0.01": parseArgs takes "-0.01" for a flag; a string flag followed by a negative number
  // gets it as its value, so the range check can say what is wrong with it.
  const joined: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith('--') ? args[i].slice(2) : undefined;
    if (
      name !== undefined &&
      table[name]?.type === 'string' &&
      i + 1 < args.length &&
      /^-(\d|\.\d|Infinity)/.test(args[i + 1])
    ) {
      joined.push(`${args[i]}=${args[i + 1]}`);
      i++;
    } else joined.push(args[i]);
  }
  const help = `see "ovq-train ${command} --help"`;
  try {
    return parseArgs({ args: joined, options: table, strict: true, allowPositionals: false })
      .values as ParsedFlags<T>;
  } catch (e) {
    const message = (e as Error).message;
    const code = (e as { code?: string }).code;
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = /'([^']+)'/.exec(message)?.[1] ?? message;
      const bare = flag.replace(/^-+/, '').split('=')[0];
      const guess = didYouMean(bare, Object.keys(table));
      throw new UsageError(
        `unknown flag ${flag} for "ovq-train ${command}"${guess ? `; did you mean --${guess}?` : ''} (${help})`,
      );
    }
    if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') {
      const word = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw new UsageError(
        `unexpected argument "${word}" for "ovq-train ${command}"; values go after their flag, as in --steps 100 (${help})`,
      );
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = /'(--[^' ]+)/.exec(message)?.[1] ?? '';
      const name = flag.replace(/^--/, '');
      throw new UsageError(
        table[name]?.type === 'boolean'
          ? `${flag}: takes no value (${help})`
          : `${flag}: needs a value, as in ${flag} VALUE (${help})`,
      );
    }
    throw new UsageError(`${message} (${help})`);
  }
}

/** An integer flag ≥ `min`; undefined when the flag is absent. */
export function integerFlag(
  flag: string,
  value: string | undefined,
  min: number,
): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (!/^[+-]?\d+$/.test(value.trim()) || !Number.isSafeInteger(x) || x < min)
    throw new UsageError(
      `--${flag}: got "${value}"; expected ${min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer ≥ ${min}`}`,
    );
  return x;
}

/** A finite number flag, > `min` (or ≥ it when `inclusive`); undefined when absent. */
export function numberFlag(
  flag: string,
  value: string | undefined,
  min: number,
  inclusive = false,
): number | undefined {
  if (value === undefined) return undefined;
  const x = Number(value);
  if (value.trim() === '' || !Number.isFinite(x) || (inclusive ? x < min : x <= min))
    throw new UsageError(
      `--${flag}: got "${value}"; expected a finite number ${inclusive ? '≥' : '>'} ${min}`,
    );
  return x;
}

/** A comma-separated list of positive integers (e.g. evaluation length multiples). */
export function integerListFlag(flag: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',');
  if (parts.some((p) => !/^\s*\d+\s*$/.test(p) || Number(p) < 1))
    throw new UsageError(
      `--${flag}: got "${value}"; expected comma-separated positive integers such as 1,4,8`,
    );
  return parts.map(Number);
}

/** A comma-separated list of fractions in [0, 1] (e.g. NIAH needle depths). */
export function fractionListFlag(flag: string, value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(',');
  if (parts.some((p) => p.trim() === '' || !(Number(p) >= 0 && Number(p) <= 1)))
    throw new UsageError(
      `--${flag}: got "${value}"; expected comma-separated numbers in [0, 1] such as 0,0.5,1`,
    );
  return parts.map(Number);
}

/** One of `choices`; undefined when absent. */
export function choiceFlag<C extends string>(
  flag: string,
  value: string | undefined,
  choices: readonly C[],
): C | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value)) {
    const guess = didYouMean(value, choices);
    throw new UsageError(
      `--${flag}: got "${value}"; choose ${choices.join(', ')}${guess ? ` (did you mean ${guess}?)` : ''}`,
    );
  }
  return value as C;
}
