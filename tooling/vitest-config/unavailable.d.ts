/** Under CI: throws. Elsewhere: prints `message` and that the tests depending on it are skipped. */
export function reportUnavailable(message: string): void;
