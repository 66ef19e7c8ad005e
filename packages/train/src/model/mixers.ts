// The mixer pattern of a hybrid decoder: a comma-separated list such as `swa,ovq`, repeated over
// the layers. SWA layers use RoPE; every long-range mixer runs without position encoding (NoPE),
// as in the paper's setup (ALGORITHM.md §7).

export const MIXER_KINDS = [
  'swa',
  'softmax',
  'ovq',
  'linear',
  'decay',
  'gdn',
  'vq',
  'kvm',
] as const;
export type MixerKind = (typeof MIXER_KINDS)[number];

export const MIXER_DESCRIPTIONS: Record<MixerKind, string> = {
  swa: 'sliding-window softmax attention with RoPE',
  softmax: 'full causal softmax attention, no position encoding',
  ovq: 'OVQ-attention (online dictionary), no position encoding',
  linear: 'linear attention (elu+1 feature map)',
  decay: 'scalar-decay gated linear attention (Mamba2-style)',
  gdn: 'Gated DeltaNet',
  vq: 'Transformer-VQ attention',
  kvm: 'Key-Value Means attention',
};

/** Expands `pattern` over `layers` layers, validating every name. */
export function mixerSchedule(pattern: string, layers: number): MixerKind[] {
  const names = pattern
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length === 0)
    throw new Error(`mixers: "${pattern}" names no mixer; expected e.g. "swa,ovq"`);
  for (const name of names) {
    if (!(MIXER_KINDS as readonly string[]).includes(name)) {
      throw new Error(
        `mixers: unknown mixer "${name}" in "${pattern}"; choose from ${MIXER_KINDS.join(', ')}`,
      );
    }
  }
  if (!Number.isInteger(layers) || layers < 1)
    throw new Error(`layers: got ${layers}; expected a positive integer`);
  return Array.from({ length: layers }, (_, i) => names[i % names.length] as MixerKind);
}
