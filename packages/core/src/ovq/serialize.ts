// Versioned binary format of an OvqState: the interchange between CPU, chunked and GPU paths and
// between sessions. Layout: "OVQS" · u32 version · u32 header bytes · JSON header · padding to 8 ·
// float64 payload (counts, centroid keys, centroid values, pending keys, pending values), little-endian.
import { OvqInputError, resolveOvqConfig } from '../validate.js';
import { OvqState, STORAGE } from './state.js';
import type { OvqConfig, ResolvedOvqConfig } from './types.js';

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

export function serializeOvqState(stateView: OvqState): Uint8Array {
  if (!(stateView instanceof OvqState)) {
    throw new OvqInputError('state', 'expected an OvqState');
  }
  const state = stateView[STORAGE];
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
 * Largest pending buffer (chunkSize·(keyDim + valueDim) float64 values: 32 MiB) a blob may ask
 * for: the pending buffer is allocated at full chunk size whatever the payload holds, so this is
 * the only size the byte length does not bound.
 */
export const OVQ_STATE_MAX_PENDING_VALUES = 2 ** 22;

/** A header integer field: a number, an integer, within [min, max]. */
function headerInteger(header: Record<string, unknown>, name: string, min: number, max: number) {
  const value = header[name];
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`header.${name} is ${JSON.stringify(value)}; expected an integer in [${min}, ${max}]`);
  }
  return value;
}

/**
 * Restores a state saved by `serializeOvqState`. With `expected`, also checks that it belongs to
 * a stream of those dimensions (and, if given, that config), so a wrong file fails loudly.
 * Untrusted bytes are safe: the header is validated and every size bounded (by the byte length,
 * or by OVQ_STATE_MAX_PENDING_VALUES for the pending buffer) before anything is allocated; any
 * inconsistency is an OvqInputError naming the field.
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
  if (headerLength > bytes.length - 12) {
    fail(`header length ${headerLength} runs past the end of the ${bytes.length} bytes`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(12, 12 + headerLength)),
    );
  } catch {
    fail('header is not valid UTF-8 JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    fail(`header is ${JSON.stringify(parsed)}; expected an object`);
  }
  const header = parsed as Record<string, unknown>;
  const keyDim = headerInteger(header, 'keyDim', 1, Number.MAX_SAFE_INTEGER);
  const valueDim = headerInteger(header, 'valueDim', 1, Number.MAX_SAFE_INTEGER);
  const tokensSeen = headerInteger(header, 'tokensSeen', 0, Number.MAX_SAFE_INTEGER);
  const pendingCount = headerInteger(header, 'pendingCount', 0, tokensSeen);
  const size = headerInteger(header, 'size', 0, tokensSeen - pendingCount);
  const rngState = headerInteger(header, 'rngState', 0, 0xffffffff);
  let config: ResolvedOvqConfig;
  try {
    config = resolveOvqConfig(header.config as OvqConfig);
  } catch (error) {
    if (!(error instanceof OvqInputError)) throw error;
    fail(`header.${error.message}`);
  }
  if (pendingCount >= config.chunkSize) {
    fail(`header.pendingCount ${pendingCount} must be < chunkSize ${config.chunkSize}`);
  }
  if (config.chunkSize * (keyDim + valueDim) > OVQ_STATE_MAX_PENDING_VALUES) {
    fail(
      `header.config.chunkSize ${config.chunkSize} with keyDim ${keyDim} and valueDim ${valueDim} asks for a pending buffer of more than ${OVQ_STATE_MAX_PENDING_VALUES} values`,
    );
  }
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
  // The payload's length bounds every row allocation: sizes that disagree with it stop here.
  const payloadStart = Math.ceil((12 + headerLength) / 8) * 8;
  const payloadLength = size * (1 + keyDim + valueDim) + pendingCount * (keyDim + valueDim);
  if (bytes.length !== payloadStart + payloadLength * 8) {
    fail(
      `has ${bytes.length} bytes; expected ${payloadStart + payloadLength * 8} for header.size ${size}, header.pendingCount ${pendingCount}, keyDim ${keyDim} and valueDim ${valueDim}`,
    );
  }
  let at = payloadStart;
  const read = (field: string, index: number): number => {
    const x = view.getFloat64(at, true);
    at += 8;
    if (!Number.isFinite(x)) fail(`non-finite value ${x} at ${field}[${index}] (byte ${at - 8})`);
    return x;
  };
  let countSum = 0;
  for (let i = 0; i < size; i++) {
    const c = view.getFloat64(payloadStart + i * 8, true);
    if (!(Number.isInteger(c) && c >= 1)) fail(`counts[${i}] is ${c}; counts are integers ≥ 1`);
    countSum += c;
  }
  if (countSum !== tokensSeen - pendingCount) {
    fail(
      `counts sum to ${countSum}; header.tokensSeen − header.pendingCount = ${tokensSeen - pendingCount} tokens were absorbed`,
    );
  }
  const result = new OvqState(keyDim, valueDim, config);
  const state = result[STORAGE];
  state.reserve(size);
  state.size = size;
  const counts = state.counts;
  for (let i = 0; i < size; i++) counts[i] = read('counts', i);
  const keys = state.centroidKeys;
  for (let i = 0; i < keys.length; i++) keys[i] = read('centroidKeys', i);
  const values = state.centroidValues;
  for (let i = 0; i < values.length; i++) values[i] = read('centroidValues', i);
  for (let i = 0; i < pendingCount * keyDim; i++) state.pendingKeys[i] = read('pendingKeys', i);
  for (let i = 0; i < pendingCount * valueDim; i++) {
    state.pendingValues[i] = read('pendingValues', i);
  }
  state.tokensSeen = tokensSeen;
  state.pendingCount = pendingCount;
  state.rngState = rngState;
  return result;
}
