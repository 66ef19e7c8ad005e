// Versioned binary format of an OvqState: the interchange between CPU, chunked and GPU paths and
// between sessions. Layout: "OVQS" · u32 version · u32 header bytes · JSON header · padding to 8 ·
// float64 payload (counts, centroid keys, centroid values, pending keys, pending values), little-endian.
import { OvqInputError, resolveOvqConfig } from '../validate.js';
import { OvqState } from './state.js';
import type { OvqConfig } from './types.js';

const MAGIC = 0x5351564f; // "OVQS" read as a little-endian u32
export const OVQ_STATE_FORMAT_VERSION = 1;

type Header = {
  keyDim: number;
  valueDim: number;
  config: OvqConfig;
  size: number;
  tokensSeen: number;
  pendingCount: number;
  rngState: number;
};

export function serializeOvqState(state: OvqState): Uint8Array {
  if (!(state instanceof OvqState)) {
    throw new OvqInputError('state', 'expected an OvqState');
  }
  const header: Header = {
    keyDim: state.keyDim,
    valueDim: state.valueDim,
    config: state.config,
    size: state.size,
    tokensSeen: state.tokensSeen,
    pendingCount: state.pendingCount,
    rngState: state.rngState,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const payloadStart = Math.ceil((12 + json.length) / 8) * 8;
  const parts = [
    state.counts,
    state.centroidKeys,
    state.centroidValues,
    state.pendingKeys.subarray(0, state.pendingCount * state.keyDim),
    state.pendingValues.subarray(0, state.pendingCount * state.valueDim),
  ];
  const payloadLength = parts.reduce((n, p) => n + p.length, 0);
  const bytes = new Uint8Array(payloadStart + payloadLength * 8);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, OVQ_STATE_FORMAT_VERSION, true);
  view.setUint32(8, json.length, true);
  bytes.set(json, 12);
  let at = payloadStart;
  for (const part of parts) {
    for (let i = 0; i < part.length; i++, at += 8) view.setFloat64(at, part[i], true);
  }
  return bytes;
}

function fail(message: string): never {
  throw new OvqInputError('bytes', message);
}

/**
 * Restores a state saved by `serializeOvqState`. With `expected`, also checks that it belongs to
 * a stream of those dimensions (and, if given, that config), so a wrong file fails loudly.
 */
export function deserializeOvqState(
  bytes: Uint8Array,
  expected: { keyDim?: number; valueDim?: number; config?: OvqConfig } = {},
): OvqState {
  if (!(bytes instanceof Uint8Array)) fail(`got ${typeof bytes}; expected a Uint8Array`);
  if (bytes.length < 12) fail(`has ${bytes.length} bytes; too short for an OVQ state`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint32(0, true) !== MAGIC) fail('does not start with "OVQS"; not an OVQ state');
  const version = view.getUint32(4, true);
  if (version !== OVQ_STATE_FORMAT_VERSION) {
    fail(`format version ${version}; this build reads version ${OVQ_STATE_FORMAT_VERSION}`);
  }
  const headerLength = view.getUint32(8, true);
  if (12 + headerLength > bytes.length) fail('header runs past the end of the data');
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + headerLength)));
  } catch {
    fail('header is not valid JSON');
  }
  const config = resolveOvqConfig(header.config);
  const state = new OvqState(header.keyDim, header.valueDim, config);
  const { keyDim, valueDim, size, tokensSeen, pendingCount, rngState } = header;
  for (const [name, value] of Object.entries({
    keyDim,
    valueDim,
    size,
    tokensSeen,
    pendingCount,
    rngState,
  })) {
    if (!Number.isInteger(value) || value < 0)
      fail(`header.${name} is ${value}; expected a non-negative integer`);
  }
  if (keyDim === 0 || valueDim === 0) fail('header dims must be positive');
  if (pendingCount >= config.chunkSize)
    fail(`pendingCount ${pendingCount} must be < chunkSize ${config.chunkSize}`);
  if (size > tokensSeen - pendingCount)
    fail(`size ${size} exceeds the ${tokensSeen - pendingCount} absorbed tokens`);
  if (expected.keyDim !== undefined && expected.keyDim !== keyDim) {
    throw new OvqInputError(
      'expected.keyDim',
      `state has keyDim ${keyDim}; expected ${expected.keyDim}`,
    );
  }
  if (expected.valueDim !== undefined && expected.valueDim !== valueDim) {
    throw new OvqInputError(
      'expected.valueDim',
      `state has valueDim ${valueDim}; expected ${expected.valueDim}`,
    );
  }
  if (expected.config !== undefined) {
    const want = resolveOvqConfig(expected.config);
    for (const key of Object.keys(want) as (keyof typeof want)[]) {
      if (key === 'capacity') continue; // capacity may legitimately change between calls
      if (JSON.stringify(want[key]) !== JSON.stringify(config[key])) {
        throw new OvqInputError(
          `expected.config.${key}`,
          `state has ${JSON.stringify(config[key])}; expected ${JSON.stringify(want[key])}`,
        );
      }
    }
  }
  const payloadStart = Math.ceil((12 + headerLength) / 8) * 8;
  const payloadLength = size * (1 + keyDim + valueDim) + pendingCount * (keyDim + valueDim);
  if (bytes.length !== payloadStart + payloadLength * 8) {
    fail(`has ${bytes.length} bytes; expected ${payloadStart + payloadLength * 8} for this header`);
  }
  let at = payloadStart;
  const read = (): number => {
    const x = view.getFloat64(at, true);
    at += 8;
    if (!Number.isFinite(x)) fail(`non-finite value at byte ${at - 8}`);
    return x;
  };
  state.reserve(size);
  state.size = size;
  const counts = state.counts;
  for (let i = 0; i < size; i++) {
    counts[i] = read();
    if (counts[i] < 1) fail(`count of row ${i} is ${counts[i]}; counts are ≥ 1`);
  }
  const keys = state.centroidKeys;
  for (let i = 0; i < keys.length; i++) keys[i] = read();
  const values = state.centroidValues;
  for (let i = 0; i < values.length; i++) values[i] = read();
  for (let i = 0; i < pendingCount * keyDim; i++) state.pendingKeys[i] = read();
  for (let i = 0; i < pendingCount * valueDim; i++) state.pendingValues[i] = read();
  state.tokensSeen = tokensSeen;
  state.pendingCount = pendingCount;
  state.rngState = rngState >>> 0;
  return state;
}
