#!/usr/bin/env bash
# Runs the GPU checks from a bundle made by scripts/gpu/prepare.sh, on a machine with an NVIDIA GPU and possibly no
# Node.js, network or Vulkan loader (docs/gpu.md). Writes everything under $OUT (default ./gpu-out):
#   env.txt             GPU, driver, glibc, the Vulkan/ICD setup chosen here
#   probe.json          what backend auto picks and why; the webgpu adapter; a matMul checked against the cpu backend
#   bench-webgpu.json   framework/cli/bench.ts --backend webgpu --json (median step time at mask 0/0.5/0.75, GFLOP/s)
#   sweep-webgpu.jsonl  scripts/gpu/sweep-lite.ts: the default config at mask 0/0.5/0.75 trained through train()
#   bench-wasm.json     the same bench on wasm (this machine's CPU), the baseline for the webgpu numbers
#   summary.txt         the headline numbers; *.stderr for each step
#
#   bash run-on-gpu.sh [BUNDLE]   (BUNDLE default: this script's folder if it holds bench.mjs, else tmp/gpu-bundle)
# Env: OUT, FLIP_DEVICE (default 0), FLIP_SWEEP_STEPS (30), BENCH_STEPS (5), SKIP_WASM=1, T_PROBE/T_BENCH/T_SWEEP/T_WASM
# (timeouts in seconds; defaults 90/150/150/120, 510 s together, under a 600 s device call).
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then B=$(cd "$1" && pwd); elif [ -f "$HERE/bench.mjs" ]; then B=$HERE; else B=$(pwd)/tmp/gpu-bundle; fi
OUT=${OUT:-$(pwd)/gpu-out}
mkdir -p "$OUT"
log() { echo "[run-on-gpu] $*" | tee -a "$OUT/run.log" >&2; }
[ -f "$B/bench.mjs" ] || { log "no bundle at $B: run scripts/gpu/prepare.sh first"; exit 1; }

# xz is not everywhere; Python's lzma reads the same files.
unxz_to() {
  if command -v xz >/dev/null; then xz -dc "$1" >"$2"
  elif command -v python3 >/dev/null; then python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$1" "$2"
  else log "neither xz nor python3 to decompress $1"; return 1
  fi
}

# Node: the machine's own if it is 20 or newer, else the shipped one.
NODE=""
if command -v node >/dev/null && [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -ge 20 ]; then
  NODE=$(command -v node)
elif [ -f "$B/node.xz" ]; then
  [ -x "$B/node" ] || { unxz_to "$B/node.xz" "$B/node" && chmod +x "$B/node"; }
  NODE=$B/node
else
  log "no Node.js >= 20 here and none in the bundle (prepare.sh without --skip-node ships one)"; exit 1
fi
DAWN=$B/node_modules/webgpu/dist/linux-x64/dawn.node
[ -f "$DAWN" ] || unxz_to "$DAWN.xz" "$DAWN" || exit 1

# dawn.node needs glibc 2.34 and GLIBCXX_3.4.30; a shipped libstdc++ covers an older libstdc++, nothing covers glibc.
SYS_STDCXX=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ {print $NF; exit}')
if [ -f "$B/compat/libstdc++.so.6" ] && { [ -z "$SYS_STDCXX" ] || ! grep -aq GLIBCXX_3.4.30 "$SYS_STDCXX"; }; then
  export LD_LIBRARY_PATH=$B/compat${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  log "using the shipped libstdc++ (system: ${SYS_STDCXX:-none})"
fi

# Vulkan: the loader (libvulkan1) and the NVIDIA driver's ICD file. The driver's Vulkan implementation lives in
# libGLX_nvidia.so.0; containers get it only with NVIDIA_DRIVER_CAPABILITIES including 'graphics' (or 'all').
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 '; then
  if [ -f "$B/vulkan/libvulkan.so.1" ]; then
    export LD_LIBRARY_PATH=$B/vulkan${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    log "using the shipped Vulkan loader"
  else
    log "no Vulkan loader (libvulkan.so.1) here or in the bundle: webgpu will fall back to OpenGL ES or fail"
  fi
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  ICD=""
  for f in /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && { ICD=$f; break; }
  done
  if [ -z "$ICD" ]; then
    GLX=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 .*x86-64/ {print $NF; exit}')
    [ -n "$GLX" ] || GLX=$(find /usr/lib /usr/lib64 /usr/lib/x86_64-linux-gnu /usr/local/nvidia -maxdepth 2 -name 'libGLX_nvidia.so.0' 2>/dev/null | head -1)
    if [ -n "$GLX" ]; then
      ICD=$B/nvidia_icd.json
      printf '{"file_format_version": "1.0.0", "ICD": {"library_path": "%s", "api_version": "1.3.0"}}\n' "$GLX" >"$ICD"
      log "wrote $ICD for $GLX"
    else
      log "no NVIDIA Vulkan ICD (nvidia_icd.json) and no libGLX_nvidia.so.0: the driver's graphics part is missing, so Vulkan cannot see the GPU"
    fi
  fi
  # VK_DRIVER_FILES for loaders >= 1.3.234, VK_ICD_FILENAMES for older ones.
  [ -n "$ICD" ] && export VK_DRIVER_FILES=$ICD VK_ICD_FILENAMES=$ICD
fi
export FLIP_DEVICE=${FLIP_DEVICE:-0}

{
  echo "date: $(date -u)"
  echo "node: $NODE $("$NODE" --version)"
  echo "glibc: $(ldd --version 2>/dev/null | head -1)"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv
  env | grep -E '^(VK_|LD_LIBRARY_PATH|NVIDIA_|CUDA_|FLIP_)' | sort
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >&2

step() { # name timeout command...: runs one step, keeps going on failure
  local name=$1 t=$2; shift 2
  local t0=$SECONDS
  timeout "$t" "$@" >"$OUT/$name" 2>"$OUT/$name.stderr"
  local rc=$?
  log "$name: exit $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo ' (timed out)')"
}

step probe.json "${T_PROBE:-90}" "$NODE" "$B/probe.mjs"
step bench-webgpu.json "${T_BENCH:-150}" "$NODE" "$B/bench.mjs" --backend webgpu --json --steps "${BENCH_STEPS:-5}" --warmup 2
step sweep-webgpu.jsonl "${T_SWEEP:-150}" env FLIP_BACKEND=webgpu FLIP_SWEEP_STEPS="${FLIP_SWEEP_STEPS:-30}" "$NODE" "$B/sweep-lite.mjs"
[ "${SKIP_WASM:-0}" = 1 ] || step bench-wasm.json "${T_WASM:-120}" "$NODE" "$B/bench.mjs" --backend wasm --json --steps 3 --warmup 1

"$NODE" -e '
const fs = require("fs"), path = require("path"), out = process.argv[1];
const read = (f) => { try { return fs.readFileSync(path.join(out, f), "utf8").trim(); } catch { return ""; } };
const json = (f) => { try { return JSON.parse(read(f)); } catch { return null; } };
const lines = [];
const p = json("probe.json");
if (p) lines.push(`probe: auto -> ${p.auto?.backend ?? "?"} (${p.auto?.device ?? p.auto?.error ?? ""}); webgpu: ${p.webgpu?.device ?? p.webgpu?.error}; matMul ${p.webgpu_matmul_gflops?.toFixed?.(1) ?? "-"} GFLOP/s, max rel err vs cpu ${p.webgpu_matmul_max_rel_err_vs_cpu ?? "-"}`);
for (const f of ["bench-webgpu.json", "bench-wasm.json"]) {
  const b = json(f);
  if (b) lines.push(`${f}: ${b.backend} (${b.device}): step s ${JSON.stringify(b.step_seconds)}; GFLOP/s ${JSON.stringify(Object.fromEntries(Object.entries(b.achieved_gflops).map(([k, v]) => [k, +v.toFixed(1)])))}; matMul ${b.matmul_gflops.toFixed(1)} GFLOP/s`);
  else lines.push(`${f}: no result (see ${f}.stderr)`);
}
for (const l of read("sweep-webgpu.jsonl").split("\n").filter(Boolean)) {
  try { const r = JSON.parse(l); lines.push(r.error ? `sweep mask ${r.mask}: ${r.error}` : `sweep mask ${r.mask}: ${r.device}; median step ${r.median_step_s?.toFixed(3)} s (first ${r.first_step_s?.toFixed(1)} s); loss ${r.first_loss?.toFixed(3)} -> ${r.last_loss?.toFixed(3)}; zero-shot top1 ${r.results?.zero_shot_top1}`); } catch {}
}
fs.writeFileSync(path.join(out, "summary.txt"), lines.join("\n") + "\n");
console.log(lines.join("\n"));
' "$OUT"
