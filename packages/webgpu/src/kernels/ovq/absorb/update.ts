// The absorb's member lists as the backward reads them from `trace` (the forward's M-step runs
// inside OvqSpawnAssignProgram from the same lists, kept in workgroup memory).
import { TRACE_WGSL } from './spawn.js';

/** Shared WGSL: the touched-row lists of absorb a, and whether token j seeded its row. */
export function memberFn(chunk: number): string {
  return `
const C: u32 = ${chunk}u;
${TRACE_WGSL}
fn recordBase(head: u32) -> u32 { return (head * P.A + P.a) * TS; }
fn groupCount(head: u32) -> u32 { return u32(trace[recordBase(head) + T_GROUPS]); }
// A seed is the token that created its row at this absorb: row ≥ n and spawned[row − n] == j.
fn isSeed(head: u32, j: u32, row: u32) -> bool {
  return row >= P.n && u32(trace[recordBase(head) + T_SPAWNED + (row - P.n)]) == j;
}
`;
}
