// What the page sends to the CPU worker instead of the built q/k/v (a few KiB, not MiB): the
// text's bytes or the recall settings. The worker builds the input (buildInput) and answers with
// the InputView the page draws from, so neither the projection nor a multi-MiB structured clone
// runs on the main thread.
import { projectBytes } from './project.js';
import { recallSequence } from './recall.js';
import type { PlaygroundInput } from './types.js';

export type InputSource =
  | { kind: 'sample' | 'text'; bytes: Uint8Array; label: string }
  | { kind: 'recall'; seqLen: number; facts: number };

/** What the page shows of an input: no q/k/v. */
export type InputView = Pick<
  PlaygroundInput,
  'kind' | 'label' | 'seqLen' | 'keyDim' | 'valueDim' | 'bytes'
> & { facts?: { count: number; positions: Int32Array } };

export function buildInput(source: InputSource): PlaygroundInput {
  return source.kind === 'recall'
    ? recallSequence({ seqLen: source.seqLen, facts: source.facts })
    : projectBytes(source.bytes, source.kind, source.label);
}

export function viewOf(input: PlaygroundInput): InputView {
  const { kind, label, seqLen, keyDim, valueDim, bytes, facts } = input;
  return {
    kind,
    label,
    seqLen,
    keyDim,
    valueDim,
    ...(bytes ? { bytes } : {}),
    ...(facts ? { facts: { count: facts.count, positions: facts.positions } } : {}),
  };
}
