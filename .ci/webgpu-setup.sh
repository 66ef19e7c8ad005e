#!/usr/bin/env bash
# Installs the system packages the @ovq/webgpu tests need on a machine without a GPU
# (see ../shared/WEBGPU-ON-CPU.md): Mesa (llvmpipe through Dawn's OpenGL ES backend, EGL
# surfaceless), the Vulkan loader, and Debian's chromium (headless browser route, and the
# SwiftShader Vulkan ICD it ships). Idempotent: does nothing when everything is present.
set -euo pipefail

packages=(mesa-vulkan-drivers libvulkan1 libegl1 libgles2 libegl-mesa0 chromium)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "webgpu-setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "webgpu-setup: system packages present"
fi

# Dawn and chromium look for a runtime dir; a private one silences their warnings.
: "${XDG_RUNTIME_DIR:=/tmp/ovq-xdg-runtime}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 0700 "$XDG_RUNTIME_DIR"

test -x /usr/bin/chromium || { echo "webgpu-setup: /usr/bin/chromium missing after install" >&2; exit 1; }
test -f /usr/lib/chromium/vk_swiftshader_icd.json ||
  echo "webgpu-setup: note: SwiftShader ICD not found; only the OpenGL ES route is available"
echo "webgpu-setup: done"
