// Decoding: a long-lived stream of one head on the fast Float32 path (see stream.ts).
export { createOvqStream, type OvqStream, type OvqStreamOptions } from './stream.js';
