#!/usr/bin/env bash
# Builds a self-contained bundle of the trainer for a GPU machine that has no Node.js and no network
# (docs/gpu.md, "Running on a machine without Node.js"). Run on a development machine after `npm install`:
#
#   bash scripts/gpu/prepare.sh [OUTDIR] [--skip-node] [--fast]     (OUTDIR default tmp/gpu-bundle, ignored by git)
#
# --fast copies the large binaries as they are instead of xz-compressing them and leaves out node, the Vulkan and GL
# libraries and the native add-on: seconds instead of minutes, for a test of the bundle on this machine (over 64 MiB).
#
# OUTDIR then holds:
#   sweep.mjs report.mjs status.mjs query.mjs          the real CLIs (framework/cli), bundled by esbuild with the
#   bench.mjs probe.mjs job-process.mjs + chunk-*.mjs   trainer (tfjs, tfjs-backend-webgpu, tfjs-backend-wasm, models/),
#                                                       ESM; job-process.mjs is what the sweep forks for each job
#                                                       (run with FLIP_JOB_PROCESS naming it: there is no esbuild there)
#   experiments/*.yaml, reports/paper-results.json      the specs, and the paper's numbers the report reads
#   node_modules/webgpu/                                Dawn's index.js + dist/linux-x64/dawn.node.xz (21.5 MB raw)
#   node_modules/@tensorflow/tfjs-backend-wasm/         only the files the wasm backend loads at run time (.wasm)
#   node_modules/better-sqlite3/ bindings/ file-uri-to-path/   the results database's add-on (build/Release/*.node.xz)
#                                                       and the package that loads it
#   node_modules/@napi-rs/canvas(-linux-x64-gnu)/       the report's chart renderer: skia.linux-x64-gnu.node.xz (35 MB raw)
#   node.xz                                             this machine's node binary, xz-compressed (~24 MB); skipped with --skip-node
#   vulkan/                                             the Vulkan loader and libglvnd (libGLdispatch, ...) from Debian
#   compat/libstdc++.so.6                               used only where the GPU machine's libstdc++ lacks GLIBCXX_3.4.30
#   native/                                             the native kernel add-on + its OpenBLAS libraries (xz), if built
#   run-on-gpu.sh                                       the script to run there
# and must stay under 64 MiB (the most a device run can carry). Everything comes from node_modules and Debian
# packages: nothing is downloaded except `apt-get download libvulkan1`.
set -euo pipefail
cd "$(dirname "$0")/../.."

OUTDIR=tmp/gpu-bundle
SKIP_NODE=0
FAST=0
for arg in "$@"; do
  case "$arg" in
    --skip-node) SKIP_NODE=1 ;;
    --fast) FAST=1 SKIP_NODE=1 ;;
    -*) echo "prepare.sh: unknown option $arg" >&2; exit 2 ;;
    *) OUTDIR=$arg ;;
  esac
done

ESBUILD=node_modules/.bin/esbuild
DAWN=node_modules/webgpu/dist/linux-x64/dawn.node
WASM_DIST=node_modules/@tensorflow/tfjs-backend-wasm/dist
[ -x "$ESBUILD" ] || { echo "prepare.sh: $ESBUILD is missing (esbuild comes with tsx): run npm install" >&2; exit 1; }
[ -f "$DAWN" ] || { echo "prepare.sh: $DAWN is missing: npm install --save-optional webgpu" >&2; exit 1; }
[ -d node_modules/@tensorflow/tfjs-backend-webgpu ] || { echo "prepare.sh: @tensorflow/tfjs-backend-webgpu is missing: npm install" >&2; exit 1; }
command -v xz >/dev/null || { echo "prepare.sh: xz is needed (Debian: xz-utils)" >&2; exit 1; }

SQLITE=node_modules/better-sqlite3/build/Release/better_sqlite3.node
SKIA=node_modules/@napi-rs/canvas-linux-x64-gnu/skia.linux-x64-gnu.node
[ -f "$SQLITE" ] || { echo "prepare.sh: $SQLITE is missing: npm install (better-sqlite3 builds or downloads it)" >&2; exit 1; }
[ -f "$SKIA" ] || { echo "prepare.sh: $SKIA is missing: npm install (@napi-rs/canvas's linux-x64-gnu package)" >&2; exit 1; }

rm -rf "$OUTDIR"
mkdir -p "$OUTDIR"

# A large binary goes in as FILE.xz (run-on-gpu.sh unpacks it there), or as it is with --fast.
ship() { # SRC DEST
  if [ "$FAST" = 1 ]; then cp -L "$1" "$2"; else xz -T1 -6 -c "$1" >"$2.xz"; fi
}

# 1. The CLIs, the job process and the trainer. Packages that load a native add-on by a computed path stay external
#    and are shipped as folders below: webgpu, better-sqlite3, @napi-rs/canvas (the report's charts, folder datasets).
#    tfjs-node(-gpu) is not shipped; nor are bullmq's and Slurm's executors' services (Redis, sbatch), though their
#    code is bundled. The banner gives bundled CommonJS code the require, __filename and __dirname it expects inside
#    an ES module.
echo "prepare.sh: bundling with esbuild"
"$ESBUILD" framework/cli/sweep.ts framework/cli/report.ts framework/cli/status.ts framework/cli/query.ts \
  framework/run/job-process.ts framework/cli/bench.ts scripts/gpu/probe.ts \
  --bundle --splitting --format=esm --platform=node --target=node20 \
  --outdir="$OUTDIR" --out-extension:.js=.mjs --entry-names='[name]' --chunk-names='chunk-[hash]' \
  --minify-whitespace --minify-syntax --legal-comments=none \
  --external:webgpu --external:@tensorflow/tfjs-node --external:@tensorflow/tfjs-node-gpu --external:@napi-rs/canvas \
  --external:better-sqlite3 \
  --banner:js="import { createRequire as __flipCreateRequire } from 'node:module'; import { fileURLToPath as __flipToPath } from 'node:url'; import { dirname as __flipDirname } from 'node:path'; const require = __flipCreateRequire(import.meta.url); const __filename = __flipToPath(import.meta.url); const __dirname = __flipDirname(__filename);" \
  --log-level=error

# 2. Dawn: the package's entry and the linux-x64 binary only (the package holds every platform: 132 MB).
mkdir -p "$OUTDIR/node_modules/webgpu/dist/linux-x64"
cp node_modules/webgpu/package.json node_modules/webgpu/index.js node_modules/webgpu/LICENSE.md "$OUTDIR/node_modules/webgpu/"
echo "prepare.sh: shipping dawn.node"
ship "$DAWN" "$OUTDIR/node_modules/webgpu/dist/linux-x64/dawn.node"

# 3. What the wasm backend reads at run time: its package.json and main file (for require.resolve) and the binaries.
W="$OUTDIR/node_modules/@tensorflow/tfjs-backend-wasm"
mkdir -p "$W/dist"
cp node_modules/@tensorflow/tfjs-backend-wasm/package.json "$W/"
cp "$WASM_DIST/tf-backend-wasm.node.js" "$WASM_DIST"/*.wasm "$W/dist/"

# 3b. better-sqlite3 (the results database): its lib/, the add-on where `bindings` looks for it (build/Release, found
#     from the package folder of the calling file) and the two small packages `bindings` needs. Built here against
#     this machine's glibc (Debian 12: 2.36); the GPU machines have 2.39.
S="$OUTDIR/node_modules/better-sqlite3"
mkdir -p "$S/build/Release"
cp -r node_modules/better-sqlite3/package.json node_modules/better-sqlite3/LICENSE node_modules/better-sqlite3/lib "$S/"
ship "$SQLITE" "$S/build/Release/better_sqlite3.node"
for pkg in bindings file-uri-to-path; do
  mkdir -p "$OUTDIR/node_modules/$pkg"
  cp node_modules/$pkg/package.json node_modules/$pkg/*.js "$OUTDIR/node_modules/$pkg/"
done

# 3c. @napi-rs/canvas (the report's PNG charts): its JS entry and the prebuilt Skia add-on of linux-x64-gnu, the
#     largest file of the bundle (35 MB raw, ~10 MB as xz).
mkdir -p "$OUTDIR/node_modules/@napi-rs/canvas" "$OUTDIR/node_modules/@napi-rs/canvas-linux-x64-gnu"
cp node_modules/@napi-rs/canvas/package.json node_modules/@napi-rs/canvas/LICENSE node_modules/@napi-rs/canvas/*.js "$OUTDIR/node_modules/@napi-rs/canvas/"
cp node_modules/@napi-rs/canvas-linux-x64-gnu/package.json "$OUTDIR/node_modules/@napi-rs/canvas-linux-x64-gnu/"
echo "prepare.sh: shipping skia.linux-x64-gnu.node"
ship "$SKIA" "$OUTDIR/node_modules/@napi-rs/canvas-linux-x64-gnu/skia.linux-x64-gnu.node"

# 3d. What the CLIs read from the project's folders: the specs, and the paper's numbers (found by the bundled report
#     under reports/ beside its own file, framework/report/generate.ts).
mkdir -p "$OUTDIR/experiments" "$OUTDIR/reports"
cp experiments/*.yaml "$OUTDIR/experiments/"
cp reports/paper-results.json "$OUTDIR/reports/"

# 4. Node itself (the GPU machines have none). Official-style builds need only glibc 2.28.
if [ "$SKIP_NODE" = 0 ]; then
  echo "prepare.sh: compressing $(command -v node) ($(node --version))"
  xz -T1 -6 -c "$(readlink -f "$(command -v node)")" >"$OUTDIR/node.xz"
fi

# 5. The Vulkan loader and the GL vendor-neutral dispatch libraries, for machines without them: the NVIDIA driver
#    provides the Vulkan ICD (libGLX_nvidia.so.0), which itself needs libGLdispatch.so.0 from libglvnd0; container
#    images made for CUDA often have neither.
GL_PACKAGES="libvulkan1 libglvnd0 libglx0 libegl1 libgles2 libopengl0 libgl1"
TMPDEB=$(mktemp -d)
# shellcheck disable=SC2086
if [ "$FAST" = 1 ]; then
  echo "prepare.sh: --fast: no Vulkan loader or GL dispatch libraries"
elif (cd "$TMPDEB" && (apt-get download $GL_PACKAGES >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get download $GL_PACKAGES >/dev/null 2>&1; })); then
  for deb in "$TMPDEB"/*.deb; do dpkg -x "$deb" "$TMPDEB/x"; done
  mkdir -p "$OUTDIR/vulkan"
  cp -L "$TMPDEB"/x/usr/lib/x86_64-linux-gnu/lib*.so.[0-9] "$OUTDIR/vulkan/"
  echo "prepare.sh: Vulkan loader and GL dispatch from $(cd "$TMPDEB" && ls ./*.deb | tr '\n' ' ')"
else
  echo "prepare.sh: warning: could not fetch $GL_PACKAGES with apt-get; the GPU machine must have libvulkan.so.1" >&2
fi
rm -rf "$TMPDEB"

# 6. A libstdc++ new enough for dawn.node (GLIBCXX_3.4.30), used there only when the machine's own is older.
LIBSTDCXX=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ && !found {print $NF; found = 1}')
if [ -n "$LIBSTDCXX" ] && grep -aq GLIBCXX_3.4.30 "$LIBSTDCXX"; then
  mkdir -p "$OUTDIR/compat"
  cp -L "$LIBSTDCXX" "$OUTDIR/compat/libstdc++.so.6"
fi

# 7. The native kernel add-on and the libraries it links (OpenBLAS, gfortran, quadmath), xz-compressed: a CPU
#    baseline on the GPU machine with the trainer's default CPU route. Skipped when the add-on is not built here.
ADDON=native/build/Release/flip_kernels.node
if [ "$FAST" = 1 ]; then
  echo "prepare.sh: --fast: no native add-on"
elif [ -f "$ADDON" ]; then
  mkdir -p "$OUTDIR/native"
  cp "$ADDON" "$OUTDIR/native/"
  for lib in $(ldd "$ADDON" | awk '/libopenblas|libgfortran|libquadmath/ {print $3}'); do
    xz -T1 -6 -c "$(readlink -f "$lib")" >"$OUTDIR/native/$(basename "$lib").xz"
  done
  echo "prepare.sh: native add-on and $(ls "$OUTDIR/native" | grep -c xz) libraries"
else
  echo "prepare.sh: no $ADDON (npm run build:native): the bundle's CPU baseline is wasm only" >&2
fi

cp scripts/gpu/run-on-gpu.sh "$OUTDIR/"
SIZE=$(du -sm "$OUTDIR" | cut -f1)
echo "prepare.sh: $OUTDIR is ${SIZE} MiB"
ls -la "$OUTDIR"
if [ "$SIZE" -gt 63 ] && [ "$FAST" = 0 ]; then
  echo "prepare.sh: warning: over the 64 MiB a device run can carry" >&2
fi
