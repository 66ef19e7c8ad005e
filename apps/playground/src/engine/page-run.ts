// A run on the page's main thread: the WebGPU path (its device lives here), or the CPU path where
// module workers are unavailable. Loaded with import() only then, so the page's first load and its
// worker runs carry neither @ovq/webgpu nor the engine.
import type { OvqConfig } from '@ovq/core';
import { buildInput, type InputSource, type InputView, viewOf } from '../inputs/source.js';
import type { PathName } from './backend.js';
import { probeGpu } from './gpu-backend.js';
import { type Frame, type RunControl, runOvq } from './run.js';

export async function runOnPage(
  source: InputSource,
  config: OvqConfig,
  path: PathName,
  onInput: (view: InputView) => void,
  onFrame: (frame: Frame) => void,
  control: RunControl,
) {
  const gpu = path === 'webgpu' ? await probeGpu() : { ctx: null, reason: 'CPU path chosen' };
  const input = buildInput(source);
  onInput(viewOf(input));
  return runOvq(input, config, path, gpu, onFrame, control);
}
