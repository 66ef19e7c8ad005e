// Messages between the page and the CPU worker (worker.ts).
import type { OvqConfig } from '@ovq/core';
import type { InputSource, InputView } from '../inputs/source.js';
import type { Frame, RunSummary } from './run.js';

export type ToWorker =
  | { type: 'run'; id: number; source: InputSource; config: OvqConfig }
  | { type: 'stop'; id: number }
  | { type: 'warm' };

export type FromWorker =
  | { type: 'input'; id: number; view: InputView }
  | { type: 'frame'; id: number; frame: Frame }
  | { type: 'done'; id: number; summary: RunSummary; output: Float32Array }
  | { type: 'error'; id: number; message: string };
