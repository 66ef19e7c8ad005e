// deserializeOvqState on untrusted bytes: every malformed header field and inconsistent size is an
// OvqInputError naming the field, raised before anything is allocated; a fuzz of byte flips and
// truncations of valid blobs either decodes to a usable state or throws OvqInputError.
import { describe, expect, it } from 'vitest';
import { ovqAttention } from '../src/chunked/index.js';
import { ovqAppend } from '../src/ovq/reference.js';
import {
  deserializeOvqState,
  OVQ_STATE_MAX_PENDING_VALUES,
  serializeOvqState,
} from '../src/ovq/serialize.js';
import { createOvqStream } from '../src/stream/index.js';
import { createRng, randomSeq } from '../src/testing/index.js';
import { OvqInputError } from '../src/validate.js';

const config = { chunkSize: 4, capacity: 5, beta: 2 };
const seq = randomSeq(3, 30, 3, 2);
const valid = serializeOvqState(ovqAttention(seq, config).state);

/** Splits a blob into its JSON header and float64 payload. */
function parts(bytes: Uint8Array): { header: Record<string, unknown>; payload: Float64Array } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(8, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(12, 12 + length)));
  const start = Math.ceil((12 + length) / 8) * 8;
  return { header, payload: new Float64Array(bytes.slice(start).buffer) };
}

/** A blob with the given header text (verbatim JSON) and payload, laid out like serializeOvqState. */
function blob(headerJson: string, payload: Float64Array): Uint8Array {
  const json = new TextEncoder().encode(headerJson);
  const start = Math.ceil((12 + json.length) / 8) * 8;
  const bytes = new Uint8Array(start + payload.length * 8);
  const view = new DataView(bytes.buffer);
  bytes.set(valid.subarray(0, 8));
  view.setUint32(8, json.length, true);
  bytes.set(json, 12);
  for (let i = 0; i < payload.length; i++) view.setFloat64(start + i * 8, payload[i], true);
  return bytes;
}

function withHeader(change: Record<string, unknown>, payload?: Float64Array): Uint8Array {
  const p = parts(valid);
  return blob(JSON.stringify({ ...p.header, ...change }), payload ?? p.payload);
}

function expectInputError(bytes: Uint8Array, message: RegExp): void {
  let error: unknown;
  try {
    deserializeOvqState(bytes);
  } catch (e) {
    error = e;
  }
  expect(error, `expected an OvqInputError matching ${message}`).toBeInstanceOf(OvqInputError);
  expect((error as OvqInputError).argument).toBe('bytes');
  expect((error as Error).message).toMatch(message);
}

describe('bad headers and sizes name the field', () => {
  const cases: [string, () => Uint8Array, RegExp][] = [
    ['keyDim −1', () => withHeader({ keyDim: -1 }), /header\.keyDim is -1; expected an integer/],
    [
      'keyDim 1e10',
      () => withHeader({ keyDim: 1e10 }),
      /header\.config\.chunkSize 4 with keyDim 10000000000/,
    ],
    [
      'keyDim 1e10 with a huge pending count',
      () => withHeader({ keyDim: 1e10, pendingCount: 3 }),
      /keyDim 10000000000/,
    ],
    ['keyDim 2.5', () => withHeader({ keyDim: 2.5 }), /header\.keyDim is 2\.5/],
    ['keyDim a string', () => withHeader({ keyDim: '3' }), /header\.keyDim is "3"/],
    [
      'valueDim missing',
      () => withHeader({ valueDim: undefined }),
      /header\.valueDim is undefined/,
    ],
    [
      'size beyond the absorbed tokens',
      () => withHeader({ size: 1000 }),
      /header\.size is 1000; expected an integer in \[0, 28\]/,
    ],
    [
      'size 1e15',
      () => withHeader({ size: 1e15, tokensSeen: 2e15 }),
      /expected .* for header\.size 1000000000000000/,
    ],
    [
      'pendingCount ≥ chunkSize',
      () => withHeader({ pendingCount: 4, tokensSeen: 34 }),
      /header\.pendingCount 4 must be < chunkSize 4/,
    ],
    ['negative tokensSeen', () => withHeader({ tokensSeen: -5 }), /header\.tokensSeen is -5/],
    ['rngState 2^32', () => withHeader({ rngState: 2 ** 32 }), /header\.rngState is 4294967296/],
    [
      'config missing',
      () => withHeader({ config: undefined }),
      /header\.config: got undefined; expected an object/,
    ],
    [
      'config.beta −1',
      () => withHeader({ config: { ...config, beta: -1 } }),
      /header\.config\.beta: got -1/,
    ],
    [
      'config.chunkSize 1e9',
      () => withHeader({ config: { ...config, chunkSize: 1e9 } }),
      /header\.config\.chunkSize 1000000000 with keyDim 3 and valueDim 2 asks for a pending buffer of more than/,
    ],
    [
      'config with an unknown key',
      () => withHeader({ config: { ...config, evil: 1 } }),
      /header\.config\.evil: unknown option/,
    ],
    ['null header', () => blob('null', parts(valid).payload), /header is null; expected an object/],
    [
      'array header',
      () => blob('[1,2]', parts(valid).payload),
      /header is \[1,2\]; expected an object/,
    ],
    ['number header', () => blob('7', parts(valid).payload), /header is 7; expected an object/],
    ['not JSON', () => blob('{"keyDim":', parts(valid).payload), /header is not valid UTF-8 JSON/],
    [
      'a count of 0.5',
      () => {
        const p = parts(valid).payload.slice();
        p[0] = 0.5;
        return withHeader({}, p);
      },
      /counts\[0\] is 0\.5; counts are integers ≥ 1/,
    ],
    [
      'counts that miss the absorbed tokens',
      () => {
        const p = parts(valid).payload.slice();
        p[0] += 1;
        return withHeader({}, p);
      },
      /counts sum to 29; .* 28 tokens were absorbed/,
    ],
    [
      'an infinite key',
      () => {
        const p = parts(valid).payload.slice();
        p[6] = Number.POSITIVE_INFINITY;
        return withHeader({}, p);
      },
      /non-finite value Infinity at centroidKeys\[2\]/,
    ],
    [
      'one float64 too few',
      () => valid.subarray(0, valid.length - 8),
      /has \d+ bytes; expected \d+ for header\.size 4, header\.pendingCount 2, keyDim 3 and valueDim 2/,
    ],
    [
      'one byte too many',
      () => Uint8Array.of(...valid, 0),
      /has \d+ bytes; expected \d+ for header/,
    ],
    [
      'header length past the end',
      () => {
        const b = valid.slice();
        new DataView(b.buffer).setUint32(8, 0xffffffff, true);
        return b;
      },
      /header length 4294967295 runs past the end/,
    ],
    ['11 bytes', () => valid.subarray(0, 11), /has 11 bytes; too short/],
  ];
  for (const [name, make, message] of cases) it(name, () => expectInputError(make(), message));

  it('the bound on the pending buffer admits every ordinary config', () => {
    expect(OVQ_STATE_MAX_PENDING_VALUES).toBeGreaterThanOrEqual(1024 * (2048 + 2048));
    const big = withHeader({ config: { ...config, chunkSize: 1024 } });
    expect(deserializeOvqState(big).config.chunkSize).toBe(1024);
  });
});

describe('fuzz: flipped and truncated bytes decode to a valid state or throw OvqInputError', () => {
  const blobs = [
    valid,
    serializeOvqState(
      ovqAttention(randomSeq(4, 50, 5, 4), {
        ...config,
        growth: 'full',
        capacity: 60,
        spawn: 'random',
        seed: 3,
      }).state,
    ),
  ];
  it('2,000 mutations', () => {
    const rng = createRng(99);
    let decoded = 0;
    let usable = 0;
    for (let trial = 0; trial < 2000; trial++) {
      const source = blobs[trial % blobs.length];
      let bytes = source.slice();
      const kind = trial % 4;
      if (kind === 3) {
        bytes = bytes.slice(0, Math.floor(rng() * bytes.length));
      } else {
        for (let f = 0; f <= kind; f++) {
          // Half the flips land in the header, where they change sizes and dims.
          const at = rng() < 0.5 ? 12 + Math.floor(rng() * 160) : Math.floor(rng() * bytes.length);
          bytes[Math.min(at, bytes.length - 1)] ^= 1 + Math.floor(rng() * 255);
        }
      }
      let state: ReturnType<typeof deserializeOvqState> | undefined;
      try {
        state = deserializeOvqState(bytes);
      } catch (error) {
        if (!(error instanceof OvqInputError)) {
          throw new Error(`trial ${trial}: ${String(error)} is not an OvqInputError`);
        }
        continue;
      }
      decoded++;
      // A decoded state round-trips, and streams on both paths with finite outputs when its
      // values have a plausible magnitude (a flipped exponent can make a key 1e134: finite, but
      // its square overflows float32, exactly as it would as an input to ovqAttention).
      expect(serializeOvqState(deserializeOvqState(serializeOvqState(state)))).toEqual(
        serializeOvqState(state),
      );
      const magnitudes = [
        state.centroidKeys,
        state.centroidValues,
        state.pendingKeys,
        state.pendingValues,
      ];
      if (magnitudes.some((a) => a.some((x) => Math.abs(x) > 1e12))) continue;
      usable++;
      const { keyDim, valueDim } = state;
      const token = {
        q: new Float64Array(keyDim).fill(1),
        k: new Float64Array(keyDim).fill(1),
        v: new Float64Array(valueDim).fill(1),
      };
      const stream = createOvqStream(state, state.config, { state });
      const y = stream.step(token.q, token.k, token.v);
      expect(y.every(Number.isFinite), `trial ${trial}: finite stream output`).toBe(true);
      const r = ovqAppend(state, { ...token, seqLen: 1 });
      expect(r.every(Number.isFinite), `trial ${trial}: finite reference output`).toBe(true);
    }
    // Some mutations must hit the payload harmlessly, else the fuzz only tests rejection.
    expect(decoded).toBeGreaterThan(50);
    expect(usable).toBeGreaterThan(50);
  });
});
