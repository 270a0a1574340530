#!/usr/bin/env bash
# Set-up, build, run and test sluice on Debian 12 (bookworm). Run as root on a fresh machine;
# as another user it works once the packages are there.
#
#   scripts/setup.sh run     install what is missing, build, run sluice on conf/sluice.yaml
#   scripts/setup.sh test    install what is missing, build (normal, ASan+UBSan, fuzz) and run
#                            every test: format check, unit, integration, sanitizers, fuzzers
#   scripts/setup.sh build   install what is missing and build (build/)
#
# Environment: FUZZ_SECONDS (default 20) bounds each fuzzer; JOBS (default: CPUs) for make.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

# What building needs, and what only the tests need (Debian package names).
BUILD_PACKAGES=(build-essential cmake pkg-config libuv1-dev node-llhttp libabsl-dev
                libyaml-cpp-dev libssl-dev nlohmann-json3-dev googletest libgtest-dev
                libbenchmark-dev libnghttp2-dev prometheus-cpp-dev)
TEST_PACKAGES=(python3 python3-h2 curl openssl etcd-server nghttp2-client nghttp2-server clang-14
               libclang-rt-14-dev clang-format-14 nginx-light haproxy nghttp2-proxy wrk strace
               gnuplot-nox)

log() { printf '\n== %s (at %ds)\n' "$*" "$SECONDS"; }

install_packages() {
  local missing=()
  for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
      missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages (run as root to install them): ${missing[*]}" >&2
    exit 1
  fi
  log "installing ${missing[*]}"
  # Keep Debian from starting services that packages install, and tidy up afterwards.
  local created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" < /dev/null
  [ $created_policy -eq 1 ] && rm -f /usr/sbin/policy-rc.d
  return 0
}

build() {  # build DIR [cmake options...]
  local dir=$1
  shift
  log "building $dir"
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > /dev/null
  cmake --build "$dir" -j"$JOBS"
}

format_check() {
  log "clang-format check"
  local files
  files=$(git ls-files '*.cc' '*.h' 2>/dev/null || find common proxy filters steering tests bench -name '*.cc' -o -name '*.h')
  # shellcheck disable=SC2086
  clang-format-14 --dry-run --Werror $files
  log "include direction check"
  python3 scripts/check_layers.py
}

run_fuzzers() {
  log "fuzzing (${FUZZ_SECONDS}s per target)"
  local work
  work=$(mktemp -d)
  for pair in http1_request:http1_request http1_response:http1_response \
              http1_server_codec:http1_request proxy_protocol:proxy_protocol path_normalizer:path \
              jwt:jwt hop_marker:hop_marker state_file:state_file admin_body:admin_body \
              etcd_reply:etcd_reply http2_server_codec:http2_frames; do
    local target=${pair%%:*} corpus=${pair##*:}
    mkdir -p "$work/$target"
    cp -r "tests/fuzz/corpus/$corpus/." "$work/$target/"
    echo "-- $target"
    "build-fuzz/tests/fuzz/${target}_fuzz" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 "$work/$target" 2>&1 |
      grep -E "^(Done|stat::number_of_executed_units)|ERROR|SUMMARY" || true
    if [ "${PIPESTATUS[0]}" -ne 0 ]; then
      echo "fuzzer $target failed" >&2
      rm -rf "$work"
      return 1
    fi
  done
  rm -rf "$work"
}

case "${1:-}" in
  run)
    install_packages "${BUILD_PACKAGES[@]}"
    build build -DSLUICE_TESTS=OFF -DSLUICE_BENCH=OFF
    log "running build/proxy/sluice --config conf/sluice.yaml (Ctrl-C drains and stops it)"
    exec build/proxy/sluice --config conf/sluice.yaml
    ;;
  build)
    install_packages "${BUILD_PACKAGES[@]}"
    build build
    ;;
  test)
    install_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    format_check
    build build
    log "tests (normal build)"
    (cd build && ctest --output-on-failure -j2 --timeout 900)
    build build-asan -DSLUICE_SANITIZE=ON -DSLUICE_BENCH=OFF
    log "tests (ASan + UBSan + LeakSanitizer)"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure -j2 --timeout 900)
    CC=clang-14 CXX=clang++-14 build build-fuzz -DSLUICE_FUZZ=ON
    run_fuzzers
    if [ -x build/bench/sluice_bench ]; then
      log "micro-benchmarks (smoke run)"
      build/bench/sluice_bench --benchmark_min_time=0.01 > /dev/null
    fi
    log "all tests passed"
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac
