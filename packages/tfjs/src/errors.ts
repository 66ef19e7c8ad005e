// Input errors of the tfjs ops and layers. Like @ovq/core's, they name the argument, the value
// received and what was expected.

/** Thrown for an invalid tensor, shape, dtype, config or state passed to an @ovq/tfjs op or layer. */
export class OvqTfjsInputError extends Error {
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(`${argument}: ${message}`);
    this.name = 'OvqTfjsInputError';
    this.argument = argument;
  }
}

export function describeShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
