#!/usr/bin/env bash
# Runs the GPU checks from a bundle made by scripts/gpu/prepare.sh, on a machine with an NVIDIA GPU and possibly no
# Node.js, network or Vulkan loader (docs/gpu.md). Writes env.txt, run.log, summary.txt and results.tar.gz (all of
# these, and each step's stdout and stderr) under $OUT (default ./gpu-out); the steps' files:
#   env.txt             GPU, driver, glibc, the Vulkan/ICD setup chosen here
#   probe.json          what backend auto picks and why; the webgpu adapter; a matMul checked against the cpu backend
#   bench-webgpu.json   framework/cli/bench.ts --backend webgpu --json (median step time at mask 0/0.5/0.75, GFLOP/s)
#   bench-webgpu-large.json  the same at model preset medium, batch 256 (about 20x the FLOPs)
#   sweep-smoke.log     the real sweep coordinator (framework/cli/sweep.ts, bundled as sweep.mjs) on
#                       experiments/smoke.yaml (backend auto), each job a child process (job-process.mjs), into SQLite
#   sweep-ablation-a.log the same on experiments/ablation-a.yaml at a GPU-scale override (ABLATION_SET, --set each),
#                       backend webgpu, ABLATION_CONCURRENCY jobs at once on the one GPU
#   report-*.log, reports/  `report` over that database (framework/cli/report.ts): tables, CSVs, PNG charts, HTML
#   status.txt          `status` over it; results.db (also $OUT/results.db) the database itself
#   bench-wasm.json     the same bench on wasm (this machine's CPU, FLIP_NATIVE_KERNELS=0), a baseline for webgpu
#   bench-native.json   the same bench with the native kernel add-on (the default CPU route), 2 threads as on the
#                       development machine; bench-native-all.json with every CPU (when the bundle has the add-on)
#   native-probe.txt    the add-on loaded and one 512x512 product timed, before the native benches
#   summary.txt         the headline numbers; NAME.stderr for each step
#
#   bash run-on-gpu.sh [BUNDLE]   (BUNDLE default: this script's folder if it holds bench.mjs, else tmp/gpu-bundle)
# Env: OUT, FLIP_DEVICE (default 0), BENCH_STEPS (5), SKIP_WASM=1, SKIP_NATIVE=1, SKIP_LARGE=1, SKIP_SWEEP=1,
# NATIVE_ALL=1 (also the every-CPU native bench), ABLATION_SET (space-separated PATH=VALUE overrides, default
# "backend=webgpu model.preset=small data.train_size=16384"), ABLATION_CONCURRENCY (18: every job of ablation-a at once),
# T_PROBE/T_BENCH/T_LARGE/T_SMOKE/T_ABLATION/T_REPORT/T_WASM/T_NATIVE (timeouts in seconds; defaults
# 60/120/90/120/200/60/60/45), and T_TOTAL (450): a step starts only while time is left and runs at most until then,
# so that the whole run stays under 8 minutes. A sweep cut short keeps the jobs it finished in the database.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
if [ $# -ge 1 ]; then B=$(cd "$1" && pwd); elif [ -f "$HERE/bench.mjs" ]; then B=$HERE; else B=$(pwd)/tmp/gpu-bundle; fi
OUT=${OUT:-$(pwd)/gpu-out}
mkdir -p "$OUT"
# Each step's output goes to RES; after every step RES is packed into $OUT/results.tar.gz, so that a run cut short
# still returns what it did (and $OUT holds few files: env.txt, run.log, summary.txt, results.tar.gz).
RES=$(mktemp -d)
log() { echo "[run-on-gpu] $*" | tee -a "$OUT/run.log" >&2; }
pack() { cp "$OUT/run.log" "$OUT/env.txt" "$RES/" 2>/dev/null; tar czf "$OUT/results.tar.gz" -C "$RES" .; }
[ -f "$B/bench.mjs" ] && [ -f "$B/sweep.mjs" ] || { log "no bundle at $B (bench.mjs, sweep.mjs): run scripts/gpu/prepare.sh first"; exit 1; }

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
# The results database's add-on, which every CLI of the sweep needs.
SQLITE=$B/node_modules/better-sqlite3/build/Release/better_sqlite3.node
[ -f "$SQLITE" ] || unxz_to "$SQLITE.xz" "$SQLITE" || log "could not unpack $SQLITE.xz: the sweeps and the report will fail"
# The report's chart renderer (Skia): without it the report fails, the sweeps do not.
SKIA=$B/node_modules/@napi-rs/canvas-linux-x64-gnu/skia.linux-x64-gnu.node
[ -f "$SKIA" ] || unxz_to "$SKIA.xz" "$SKIA" || log "could not unpack $SKIA.xz: the report will fail"
# The sweep forks this for each job: the coordinator would otherwise build it with esbuild, which is not here.
export FLIP_JOB_PROCESS=$B/job-process.mjs

# dawn.node needs glibc 2.34 and GLIBCXX_3.4.30; a shipped libstdc++ covers an older libstdc++, nothing covers glibc.
SYS_STDCXX=$(ldconfig -p 2>/dev/null | awk '/libstdc\+\+\.so\.6 .*x86-64/ && !found {print $NF; found = 1}')
if [ -f "$B/compat/libstdc++.so.6" ] && { [ -z "$SYS_STDCXX" ] || ! grep -aq GLIBCXX_3.4.30 "$SYS_STDCXX"; }; then
  export LD_LIBRARY_PATH=$B/compat${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  log "using the shipped libstdc++ (system: ${SYS_STDCXX:-none})"
fi

# Vulkan: the loader (libvulkan1) and the NVIDIA driver's ICD file. The driver's Vulkan implementation lives in
# libGLX_nvidia.so.0; containers get it only with NVIDIA_DRIVER_CAPABILITIES including 'graphics' (or 'all').
# The NVIDIA ICD library (libGLX_nvidia.so.0) needs libGLdispatch.so.0 (libglvnd): without it the loader finds no GPU.
if ! ldconfig -p 2>/dev/null | grep -q 'libvulkan\.so\.1 ' || ! ldconfig -p 2>/dev/null | grep -q 'libGLdispatch\.so\.0 '; then
  if [ -f "$B/vulkan/libvulkan.so.1" ]; then
    export LD_LIBRARY_PATH=$B/vulkan${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    log "using the shipped Vulkan loader and GL dispatch libraries"
  else
    log "no Vulkan loader (libvulkan.so.1) here or in the bundle: webgpu will fall back to OpenGL ES or fail"
  fi
fi
if [ -z "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]; then
  ICD=""
  for f in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.x86_64.json /usr/local/share/vulkan/icd.d/nvidia_icd.json; do
    [ -f "$f" ] && { ICD=$f; break; }
  done
  if [ -z "$ICD" ]; then
    GLX=$(ldconfig -p 2>/dev/null | awk '/libGLX_nvidia\.so\.0 .*x86-64/ && !found {print $NF; found = 1}')
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
# EGL (Dawn's OpenGL ES fallback) finds the NVIDIA vendor file only where the driver was installed normally.
if [ -z "${__EGL_VENDOR_LIBRARY_FILENAMES:-}" ] && [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
export FLIP_DEVICE=${FLIP_DEVICE:-0}

# The native add-on: its OpenBLAS libraries go in a folder of their own on LD_LIBRARY_PATH of the native steps only.
NATIVE_ENV=()
if [ -f "$B/native/flip_kernels.node" ]; then
  for f in "$B"/native/*.xz; do [ -f "${f%.xz}" ] || unxz_to "$f" "${f%.xz}"; done
  # OpenBLAS reads the CPU model to pick its kernels; a virtual machine's generic model name makes it fall back to
  # its slowest (Prescott, SSE3) ones. Where the CPU has AVX2 and FMA, name the Haswell kernels.
  CORETYPE=()
  if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then CORETYPE=("OPENBLAS_CORETYPE=Haswell"); fi
  NATIVE_ENV=(env "${CORETYPE[@]}" "LD_LIBRARY_PATH=$B/native${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "FLIP_NATIVE_ADDON=$B/native/flip_kernels.node")
fi

{
  echo "date: $(date -u)"
  echo "node: $NODE $("$NODE" --version)"
  echo "glibc: $(ldd --version 2>/dev/null | head -1)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(nproc) CPUs available, flags: $(grep -m1 -ow -E 'avx2|avx512f|fma' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,driver_version,memory.total --format=csv
  env | grep -E '^(VK_|LD_LIBRARY_PATH|NVIDIA_|CUDA_|FLIP_|__EGL)' | sort
  for f in ${VK_DRIVER_FILES:-}; do echo "$f: $(cat "$f" 2>&1 | tr -d '\n')"; done
  echo "driver graphics libraries: $(ls /usr/local/nvidia/lib64 /usr/lib/x86_64-linux-gnu 2>/dev/null | grep -E '^lib(GLX_nvidia|EGL_nvidia|GLdispatch|vulkan)' | sort -u | tr '\n' ' ')"
} >"$OUT/env.txt" 2>&1
cat "$OUT/env.txt" >&2

T_TOTAL=${T_TOTAL:-450}
step() { # name timeout command...: runs one step, keeps going on failure; skipped or shortened near T_TOTAL
  local name=$1 t=$2; shift 2
  local left=$((T_TOTAL - SECONDS))
  if [ "$left" -lt 10 ]; then log "$name: skipped (T_TOTAL=$T_TOTAL s spent)"; return; fi
  [ "$t" -le "$left" ] || t=$left
  local t0=$SECONDS
  # -k: a sweep asked to stop ends its jobs first; SIGKILL only if that takes over 15 s.
  timeout -k 15 "$t" "$@" >"$RES/$name" 2>"$RES/$name.stderr"
  local rc=$?
  log "$name: exit $rc after $((SECONDS - t0)) s$([ $rc = 124 ] && echo ' (timed out)')"
  pack
}

# The sweeps' database and checkpoints live in a scratch folder (checkpoints are large and not returned); the database
# is copied to $OUT/results.db and packed with the reports after each sweep.
WORK=$(mktemp -d)
DB=$WORK/results.db
save_db() { for f in "$DB" "$DB-wal"; do [ -f "$f" ] && cp "$f" "$OUT/$(basename "$f")"; done; cp "$OUT"/results.db* "$RES/" 2>/dev/null; pack; }
sweep_and_report() { # name timeout spec [sweep options...]: a sweep, then status and the report over the database
  local name=$1 t=$2 spec=$3; shift 3
  step "sweep-$name.log" "$t" "$NODE" "$B/sweep.mjs" "$spec" --db "$DB" --plain "$@"
  save_db
  step "report-$name.log" "${T_REPORT:-60}" "$NODE" "$B/report.mjs" "$spec" --db "$DB" --out "$RES/reports"
  step status.txt 20 "$NODE" "$B/status.mjs" --db "$DB"
}

step probe.json "${T_PROBE:-60}" env VK_LOADER_DEBUG=error,warn "$NODE" "$B/probe.mjs"
# --no-overhead: the overhead measurement starts sweep jobs through tsx, which the bundle does not carry.
step bench-webgpu.json "${T_BENCH:-120}" "$NODE" "$B/bench.mjs" --backend webgpu --json --no-overhead --steps "${BENCH_STEPS:-5}" --warmup 2
# A larger step (model preset medium, batch 256: about 20x the reference step's FLOPs), where a GPU has work to do.
[ "${SKIP_LARGE:-0}" = 1 ] || step bench-webgpu-large.json "${T_LARGE:-90}" "$NODE" "$B/bench.mjs" --backend webgpu --preset medium --batch 256 --json --no-overhead --steps 3 --warmup 1
if [ "${SKIP_SWEEP:-0}" != 1 ]; then
  # The whole path of `npm run sweep` and `npm run report`: spec -> grid -> job processes -> SQLite -> report.
  sweep_and_report smoke "${T_SMOKE:-120}" "$B/experiments/smoke.yaml"
  SETS=()
  for a in ${ABLATION_SET:-backend=webgpu model.preset=small data.train_size=16384}; do SETS+=(--set "$a"); done
  sweep_and_report ablation-a "${T_ABLATION:-200}" "$B/experiments/ablation-a.yaml" "${SETS[@]}" --concurrency "${ABLATION_CONCURRENCY:-18}" --retries 0
fi
[ "${SKIP_WASM:-0}" = 1 ] || step bench-wasm.json "${T_WASM:-60}" env FLIP_NATIVE_KERNELS=0 "$NODE" "$B/bench.mjs" --backend wasm --json --no-overhead --steps 3 --warmup 1
if [ "${SKIP_NATIVE:-0}" != 1 ]; then
  if [ ${#NATIVE_ENV[@]} -gt 0 ]; then
    # Loads the add-on and times one product first: a failure here is told apart from a slow or stuck bench.
    step native-probe.txt 20 "${NATIVE_ENV[@]}" OPENBLAS_VERBOSE=2 "$NODE" -e '
      const a = require(process.env.FLIP_NATIVE_ADDON); console.log("loaded");
      a.setThreads(2); console.log(JSON.stringify(a.info()));
      const n = 512, x = new Float32Array(n * n).fill(0.5), c = new Float32Array(n * n);
      for (let i = 0; i < 3; i++) { const t0 = performance.now(); a.gemm(x, x, c, 1, n, n, n, false, false, 0, 0, 0, false); console.log("gemm 512:", (performance.now() - t0).toFixed(2), "ms", c[0]); }'
    step bench-native.json "${T_NATIVE:-45}" "${NATIVE_ENV[@]}" FLIP_NATIVE_THREADS=2 "$NODE" "$B/bench.mjs" --backend wasm --json --no-overhead --steps 7 --warmup 2
    [ "${NATIVE_ALL:-0}" = 1 ] && step bench-native-all.json "${T_NATIVE:-45}" "${NATIVE_ENV[@]}" "$NODE" "$B/bench.mjs" --backend wasm --json --no-overhead --steps 7 --warmup 2
  fi
fi

"$NODE" -e '
const fs = require("fs"), path = require("path"), out = process.argv[1], res = process.argv[2];
const read = (f) => { try { return fs.readFileSync(path.join(res, f), "utf8").trim(); } catch { return ""; } };
const json = (f) => { try { return JSON.parse(read(f)); } catch { return null; } };
const lines = [];
const p = json("probe.json");
if (p) lines.push(`probe: auto -> ${p.auto?.backend ?? "?"} (${p.auto?.device ?? p.auto?.error ?? ""}); webgpu: ${p.webgpu?.device ?? p.webgpu?.error}; matMul ${p.webgpu_matmul_gflops?.toFixed?.(1) ?? "-"} GFLOP/s, max rel err vs cpu ${p.webgpu_matmul_max_rel_err_vs_cpu ?? "-"}; readback ${p.webgpu_readback_ms_median?.toFixed?.(2) ?? "-"} ms`);
for (const f of ["bench-webgpu.json", "bench-webgpu-large.json", "bench-wasm.json", "bench-native.json", "bench-native-all.json"]) {
  const b = json(f);
  if (b) lines.push(`${f}: ${b.backend} (${b.device}) ${b.preset ?? ""}/${b.batch_size ?? ""}: step s ${JSON.stringify(b.step_seconds)}; GFLOP/s ${JSON.stringify(Object.fromEntries(Object.entries(b.achieved_gflops).map(([k, v]) => [k, +v.toFixed(1)])))}; matMul ${b.matmul_gflops.toFixed(1)} GFLOP/s`);
  else if (fs.existsSync(path.join(res, f))) lines.push(`${f}: no result (see ${f}.stderr)`);
}
for (const f of ["sweep-smoke.log", "sweep-ablation-a.log"]) {
  const last = read(f).split("\n").filter(Boolean).pop();
  if (last) lines.push(`${f}: ${last}`);
  else if (fs.existsSync(path.join(res, f))) lines.push(`${f}: no summary line (see ${f}.stderr)`);
}
fs.writeFileSync(path.join(out, "summary.txt"), lines.join("\n") + "\n");
console.log(lines.join("\n"));
' "$OUT" "$RES"
cp "$OUT/summary.txt" "$RES/"
pack
