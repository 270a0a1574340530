#!/usr/bin/env bash
# Set-up, build, run and test sluice on Debian 12 (bookworm). Run as root on a fresh machine
# (there is no sudo there); as another user it works once the packages are there.
#
#   scripts/setup.sh run     install what is missing, build (build/), install sluice and
#                            sluicectl under /usr/local (as root), run sluice on conf/sluice.yaml
#   scripts/setup.sh demo    the same, then the three-region demo: etcd, three origins and three
#                            sluices on loopback (conf/regions/demo.sh; Ctrl-C stops it)
#   scripts/setup.sh test    install what is missing, build and run every test: format and
#                            layer checks; unit and integration tests (build-test/, developer
#                            warnings as errors, Debian's hardening flags); a Release build
#                            (build-release/); the tests under ASan+UBSan (build-asan/); every
#                            fuzzer (build-fuzz/); a benchmark smoke run
#   scripts/setup.sh build   install what is missing and build (build/)
#
# Each command passes every build option it relies on, in a build directory of its own, so
# whatever ran before cannot change what it builds or tests. The test command's extra builds
# (Release, ASan, fuzz) compile each library as one unity file, which takes about 40% less
# time on 2 cores; build-test compiles file by file, so a missing include still shows.
# Environment: FUZZ_SECONDS (default 5) bounds each fuzzer; JOBS (default: CPUs) for make;
# PREFIX (default /usr/local) for the install step of run and demo.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-5}
PREFIX=${PREFIX:-/usr/local}

# The Debian package lists live in scripts/packages/ (docker/Dockerfile reads them too).
packages() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "scripts/packages/$1.txt"; }
mapfile -t BUILD_PACKAGES < <(packages build)
mapfile -t TOOL_PACKAGES < <(packages tools)
mapfile -t TEST_PACKAGES < <(packages test)

# Debian's hardening flags (dpkg-buildflags on bookworm), for the builds the tests check.
HARDENING_CXXFLAGS="-fstack-protector-strong -Wformat -Werror=format-security -D_FORTIFY_SOURCE=2"
HARDENING_LDFLAGS="-Wl,-z,relro"

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

build() {  # build DIR [cmake options...]: configures with exactly these options, and builds
  local dir=$1
  shift
  log "building $dir"
  cmake -S "$ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" > /dev/null
  cmake --build "$dir" -j"$JOBS"
}

# The build users run: no tests (the benchmarks and the drill load are in), warnings stay warnings.
user_build() {
  build build -DSLUICE_TESTS=OFF -DSLUICE_BENCH=ON -DSLUICE_DEVELOPER=OFF -DSLUICE_SANITIZE=OFF \
    -DSLUICE_FUZZ=OFF -DCMAKE_INSTALL_PREFIX="$PREFIX"
}

install_binaries() {
  if [ "$(id -u)" -ne 0 ] && [ ! -w "$PREFIX" ]; then
    echo "not installing under $PREFIX (not root): use build/proxy/sluice and build/ctl/sluicectl" >&2
    return 0
  fi
  log "installing sluice and sluicectl under $PREFIX"
  cmake --install build > /dev/null  # the unit names the paths under $PREFIX
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
              etcd_reply:etcd_reply etcd_grpc:etcd_grpc http2_server_codec:http2_frames \
              detection_input:detection_input cohort_cidr:cohort_cidr dns_reply:dns_reply \
              tsig_key:tsig_key http1_differential:http1_differential; do
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
    install_packages "${BUILD_PACKAGES[@]}" "${TOOL_PACKAGES[@]}"
    user_build
    install_binaries
    log "running build/proxy/sluice --config conf/sluice.yaml (Ctrl-C drains and stops it)"
    exec build/proxy/sluice --config conf/sluice.yaml
    ;;
  demo)
    install_packages "${BUILD_PACKAGES[@]}" "${TOOL_PACKAGES[@]}"
    user_build
    install_binaries
    log "the three-region demo (Ctrl-C stops every process it started)"
    exec conf/regions/demo.sh
    ;;
  build)
    install_packages "${BUILD_PACKAGES[@]}"
    user_build
    ;;
  test)
    install_packages "${BUILD_PACKAGES[@]}" "${TOOL_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
    format_check
    build build-test -DSLUICE_TESTS=ON -DSLUICE_BENCH=ON -DSLUICE_DEVELOPER=ON \
      -DSLUICE_SANITIZE=OFF -DSLUICE_FUZZ=OFF -DCMAKE_CXX_FLAGS="$HARDENING_CXXFLAGS" \
      -DCMAKE_C_FLAGS="$HARDENING_CXXFLAGS" -DCMAKE_EXE_LINKER_FLAGS="$HARDENING_LDFLAGS"
    log "tests (normal build)"
    (cd build-test && ctest --no-tests=error --output-on-failure -j2 --timeout 900)
    log "Release build with Debian's hardening flags (warnings are errors)"
    cmake -S "$ROOT" -B build-release -DCMAKE_BUILD_TYPE=Release -DSLUICE_TESTS=OFF \
      -DSLUICE_BENCH=OFF -DSLUICE_DEVELOPER=ON -DSLUICE_SANITIZE=OFF -DSLUICE_FUZZ=OFF \
      -DCMAKE_UNITY_BUILD=ON \
      -DCMAKE_CXX_FLAGS="$HARDENING_CXXFLAGS" -DCMAKE_C_FLAGS="$HARDENING_CXXFLAGS" \
      -DCMAKE_EXE_LINKER_FLAGS="$HARDENING_LDFLAGS" > /dev/null
    cmake --build build-release -j"$JOBS"
    build build-asan -DSLUICE_TESTS=ON -DSLUICE_BENCH=OFF -DSLUICE_DEVELOPER=ON \
      -DSLUICE_SANITIZE=ON -DSLUICE_FUZZ=OFF -DCMAKE_UNITY_BUILD=ON
    log "tests (ASan + UBSan + LeakSanitizer)"
    (cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
       UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
       ctest --no-tests=error --output-on-failure -j2 --timeout 900)
    CC=clang-14 CXX=clang++-14 build build-fuzz -DSLUICE_FUZZ=ON -DSLUICE_DEVELOPER=ON \
      -DSLUICE_SANITIZE=OFF -DCMAKE_UNITY_BUILD=ON
    run_fuzzers
    log "micro-benchmarks (smoke run)"
    build-test/bench/sluice_bench --benchmark_min_time=0.01 > /dev/null
    log "all tests passed"
    ;;
  *)
    sed -n '2,20p' "$0"
    exit 2
    ;;
esac
