#!/usr/bin/env bash
# One prepared check for a Linux machine with a real GPU and no network (issue 16): runs the
# correctness suite on the GPU's Vulkan driver, then the benchmark (OVQ forward, forward+backward,
# read kernel, decode step; softmax attention; linear attention; matmul yardstick) at BH = 32,
# dk = dv = 128, T = 4k … 256k, and writes the table into BENCHMARKS.md between the
# `gpu-check` markers. Designed to finish in under 8 minutes (OVQ_GPU_CHECK_BUDGET_S, default 470).
#
# Before going offline, from the repository root (with network):
#   pnpm install && pnpm --filter @ovq/core --filter @ovq/webgpu build
#   mkdir -p bench-results/vulkan-debs && (cd bench-results/vulkan-debs && apt-get download libvulkan1)
# `bench-results/` is ignored by git (bring it along with the checkout). If the machine has no
# Vulkan loader (libvulkan.so.1), the script unpacks those .deb files into
# bench-results/vulkan-debs/root and puts it on LD_LIBRARY_PATH; the GPU's own ICD (e.g.
# nvidia_icd.json from the driver) is used.
#
# Usage: packages/webgpu/bench/gpu-check.sh [--allow-software]
#   --allow-software: run even when the adapter is a CPU fallback (SwiftShader) — a dry run of
#   the script itself; the numbers then say nothing about GPU speed.
# Env overrides: OVQ_BENCH_T, OVQ_BENCH_BH, OVQ_BENCH_D, OVQ_BENCH_N, OVQ_BENCH_BUDGET_S,
# OVQ_GPU_CHECK_TESTS (vitest file list), OVQ_GPU_CHECK_BUDGET_S, OVQ_GPU_CHECK_MD (the file to
# write instead of BENCHMARKS.md, e.g. for a dry run).
set -euo pipefail

ALLOW_SOFTWARE=0
[[ "${1:-}" == "--allow-software" ]] && ALLOW_SOFTWARE=1
START=$SECONDS
BUDGET=${OVQ_GPU_CHECK_BUDGET_S:-470}
PKG="$(cd "$(dirname "$0")/.." && pwd)"
ROOT="$(cd "$PKG/../.." && pwd)"
OUT="$ROOT/bench-results/gpu-check"
mkdir -p "$OUT"
log() { echo "[gpu-check $((SECONDS - START))s] $*"; }
left() { echo $((BUDGET - (SECONDS - START))); }

# 1. Vulkan loader.
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1'; then
  DEBS="${OVQ_VULKAN_DEBS:-$ROOT/bench-results/vulkan-debs}"
  if compgen -G "$DEBS/*.deb" >/dev/null; then
    log "no system libvulkan.so.1: unpacking $(ls "$DEBS"/*.deb | wc -l) .deb file(s) from $DEBS"
    for deb in "$DEBS"/*.deb; do dpkg-deb -x "$deb" "$DEBS/root"; done
    LIBDIR="$(dirname "$(find "$DEBS/root" -name 'libvulkan.so.1*' | head -1)")"
    export LD_LIBRARY_PATH="$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else
    log "warning: no libvulkan.so.1 and no .deb files in $DEBS (see the header of this script)"
  fi
fi
# The NVIDIA driver may ship its ICD only as a library: describe it when no JSON is installed.
if [[ -z "${VK_ICD_FILENAMES:-}" ]] && ! compgen -G '/usr/share/vulkan/icd.d/*nvidia*' >/dev/null \
  && ! compgen -G '/etc/vulkan/icd.d/*nvidia*' >/dev/null \
  && /sbin/ldconfig -p 2>/dev/null | grep -q 'libGLX_nvidia.so.0'; then
  ICD="$OUT/nvidia_icd.json"
  printf '{"file_format_version":"1.0.0","ICD":{"library_path":"libGLX_nvidia.so.0","api_version":"1.3.0"}}\n' >"$ICD"
  export VK_ICD_FILENAMES="$ICD"
  log "wrote $ICD for the NVIDIA driver"
fi
command -v nvidia-smi >/dev/null && nvidia-smi -L || true
export OVQ_WEBGPU_ADAPTERS=vulkan OVQ_WEBGPU_ROUTE=vulkan

# 2. Build (offline: dependencies must already be installed).
if [[ ! -f "$ROOT/packages/core/dist/index.js" ]]; then
  log "building @ovq/core"
  (cd "$ROOT/packages/core" && pnpm exec tsc -p tsconfig.build.json)
fi
log "building @ovq/webgpu"
(cd "$PKG" && pnpm exec tsc -p tsconfig.build.json)

# 3. Is the adapter a GPU?
ADAPTER="$(cd "$PKG" && node --input-type=module -e "
import { acquireDevice, prepareHeadlessDawn, subgroupLayoutOf } from './dist/index.js';
await prepareHeadlessDawn();
const a = await acquireDevice({ nodeBackend: 'vulkan' });
const i = a.adapterInfo;
console.log(JSON.stringify({ name: [i.vendor, i.architecture, i.device, i.description].filter(Boolean).join(' | '), fallback: a.isFallbackAdapter, subgroups: a.device.features.has('subgroups'), subgroupLayoutProbe: subgroupLayoutOf(a.device) ?? null }));
process.exit(0);
")"
log "adapter: $ADAPTER"
if [[ "$ADAPTER" == *'"fallback":true'* || "$ADAPTER" == *[Ss]wift[Ss]hader* ]] && [[ $ALLOW_SOFTWARE == 0 ]]; then
  log "the Vulkan adapter is a CPU fallback, not a GPU; stopping (use --allow-software for a dry run)"
  exit 2
fi

# 4. Correctness suite on this adapter (about a third of the budget at most).
TESTS=${OVQ_GPU_CHECK_TESTS:-"test/ovq-forward.test.ts test/ovq-backward.test.ts test/ovq-precision.test.ts test/ovq-variants.test.ts test/subgroup-layout.test.ts test/errors.test.ts test/baselines.test.ts test/gated-deltanet.test.ts"}
log "correctness: $TESTS"
set +e
(cd "$PKG" && timeout $(( $(left) / 3 )) pnpm exec vitest run $TESTS) >"$OUT/tests.log" 2>&1
TESTS_RC=$?
set -e
SUMMARY="$(sed 's/\x1b\[[0-9;]*m//g' "$OUT/tests.log" | grep -E '^ *Tests +[0-9]' | tail -1 | xargs || true)"
log "correctness exit $TESTS_RC: ${SUMMARY:-no summary (see $OUT/tests.log)}"

# 5. Benchmark with what is left (minus 20 s for the write-up).
export OVQ_BENCH_T=${OVQ_BENCH_T:-4096,8192,16384,32768,65536,131072,262144}
export OVQ_BENCH_BH=${OVQ_BENCH_BH:-32} OVQ_BENCH_D=${OVQ_BENCH_D:-128} OVQ_BENCH_N=${OVQ_BENCH_N:-1024}
export OVQ_BENCH_BUDGET_S=${OVQ_BENCH_BUDGET_S:-8} OVQ_BENCH_REPEATS=${OVQ_BENCH_REPEATS:-3}
export OVQ_BENCH_DECODE=1 OVQ_BENCH_MD="$OUT/table.md"
log "benchmark: T = $OVQ_BENCH_T, BH = $OVQ_BENCH_BH, d = $OVQ_BENCH_D, N = $OVQ_BENCH_N ($(( $(left) - 20 )) s)"
set +e
# 60 s kept for the read-variant comparison below.
(cd "$PKG" && timeout $(( $(left) - 80 )) node bench/run.mjs) >"$OUT/bench.log" 2>&1
BENCH_RC=$?
set -e
[[ $BENCH_RC == 124 ]] && log "benchmark cut at the time budget; the table holds what was measured"

# 5b. Read variants (plain vs subgroups where the device has them) in one process, T = 16k.
VARIANTS_RC=skipped
if (( $(left) > 40 )); then
  log "read variants: T = 16384 ($(( $(left) - 20 )) s)"
  set +e
  (cd "$PKG" && OVQ_BENCH_VARIANTS=1 OVQ_BENCH_T=16384 OVQ_BENCH_MD="$OUT/variants.md" \
    timeout $(( $(left) - 20 )) node bench/run.mjs) >"$OUT/variants.log" 2>&1
  VARIANTS_RC=$?
  set -e
fi

# 6. Write BENCHMARKS.md's GPU section (between the markers; appended if they are absent).
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
DIRTY="$(git -C "$ROOT" status --porcelain -- packages/webgpu packages/core 2>/dev/null | head -1)"
SECTION="$OUT/section.md"
{
  echo "<!-- gpu-check:begin -->"
  echo "## GPU check, $(date -u +%Y-%m-%d) (bench/gpu-check.sh)"
  echo
  echo "Device: \`$ADAPTER\`$(command -v nvidia-smi >/dev/null && echo "; $(nvidia-smi -L | head -1)")."
  echo "Commit $COMMIT${DIRTY:+ (with uncommitted changes)}; Node $(node --version)."
  echo "Correctness suite on this adapter (exit $TESTS_RC): ${SUMMARY:-see bench-results/gpu-check/tests.log}."
  echo "Benchmark exit $BENCH_RC$([[ $BENCH_RC == 124 ]] && echo ' (cut at the time budget: larger T not measured)')."
  echo "Command: \`OVQ_BENCH_T=$OVQ_BENCH_T OVQ_BENCH_BH=$OVQ_BENCH_BH OVQ_BENCH_D=$OVQ_BENCH_D OVQ_BENCH_N=$OVQ_BENCH_N OVQ_BENCH_BUDGET_S=$OVQ_BENCH_BUDGET_S OVQ_BENCH_DECODE=1 node bench/run.mjs\`"
  echo
  if [[ -s "$OUT/table.md" ]]; then cat "$OUT/table.md"; else echo "(no benchmark output; see bench-results/gpu-check/bench.log)"; fi
  echo
  echo "Read variants (exit $VARIANTS_RC): \`OVQ_BENCH_VARIANTS=1 OVQ_BENCH_T=16384 OVQ_BENCH_BH=$OVQ_BENCH_BH OVQ_BENCH_D=$OVQ_BENCH_D OVQ_BENCH_N=$OVQ_BENCH_N node bench/run.mjs\`"
  echo
  if [[ -s "$OUT/variants.md" ]]; then cat "$OUT/variants.md"; else echo "(no variant output; see bench-results/gpu-check/variants.log)"; fi
  echo "<!-- gpu-check:end -->"
} >"$SECTION"
MDFILE="${OVQ_GPU_CHECK_MD:-$PKG/BENCHMARKS.md}"
if grep -q '<!-- gpu-check:begin -->' "$MDFILE"; then
  awk -v section="$SECTION" '
    /<!-- gpu-check:begin -->/ { while ((getline line < section) > 0) print line; skip = 1; next }
    /<!-- gpu-check:end -->/ { skip = 0; next }
    !skip { print }
  ' "$MDFILE" >"$MDFILE.tmp" && mv "$MDFILE.tmp" "$MDFILE"
else
  { echo; cat "$SECTION"; } >>"$MDFILE"
fi
log "wrote the GPU section of $MDFILE (logs in $OUT); total $((SECONDS - START)) s"
