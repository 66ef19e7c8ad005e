/** Thrown for invalid arguments and unusable devices; `argument` names what was wrong. */
export class WebGpuError extends Error {
  readonly argument: string;
  constructor(argument: string, message: string) {
    super(`${argument}: ${message}`);
    this.name = 'WebGpuError';
    this.argument = argument;
  }
}
