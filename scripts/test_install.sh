#!/usr/bin/env bash
# Install test (ctest install_consumer, label cpu): installs an already built tree into a
# temporary prefix, checks that the installed C header is plain C99, configures and builds
# examples/engine_demo against the installed package (find_package(latentkv CONFIG); building
# only, running needs a GPU), and configures a project that uses latentkv through
# add_subdirectory (configure only, CUDA off: checks the options and the exported target names).
# Usage: scripts/test_install.sh [build_dir] [work_dir]
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$src/build}" && pwd)
work=${2:-$build/install-test}
rm -rf "$work"
mkdir -p "$work"

step() { echo "test_install: $*"; }

step "install $build -> $work/prefix"
cmake --install "$build" --prefix "$work/prefix" >"$work/install.log"
for f in include/latentkv/c_api.h lib/cmake/latentkv/latentkvConfig.cmake \
         lib/cmake/latentkv/latentkvConfigVersion.cmake lib/cmake/latentkv/latentkvTargets.cmake; do
  [ -f "$work/prefix/$f" ] || { echo "test_install: missing $f after install" >&2; exit 1; }
done

step "c_api.h is C99"
cc -std=c99 -Wall -Wextra -pedantic -Werror -fsyntax-only -x c "$work/prefix/include/latentkv/c_api.h"

# The consumer uses the compilers of the build tree, so the library and the demo match.
cxx=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$build/CMakeCache.txt")
step "find_package consumer: examples/engine_demo"
cmake -S "$src/examples/engine_demo" -B "$work/demo" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_PREFIX_PATH="$work/prefix" ${cxx:+-DCMAKE_CXX_COMPILER="$cxx"} >"$work/demo-configure.log"
cmake --build "$work/demo" -j 2 >"$work/demo-build.log" 2>&1 || {
  cat "$work/demo-build.log" >&2
  exit 1
}
[ -x "$work/demo/latentkv-engine-demo" ] || { echo "test_install: demo binary missing" >&2; exit 1; }

step "add_subdirectory consumer (configure only)"
mkdir -p "$work/subdir"
cat >"$work/subdir/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.24)
project(latentkv_subdir_consumer LANGUAGES CXX)
set(LATENTKV_WITH_CUDA OFF CACHE BOOL "" FORCE)
add_subdirectory("$src" latentkv)
foreach(t latentkv::latentkv latentkv::headers)
  if(NOT TARGET \${t})
    message(FATAL_ERROR "add_subdirectory(latentkv) does not define \${t}")
  endif()
endforeach()
foreach(opt LATENTKV_BUILD_TESTS LATENTKV_BUILD_BENCH LATENTKV_BUILD_EXAMPLES LATENTKV_INSTALL)
  if(\${opt})
    message(FATAL_ERROR "\${opt} must default to OFF under add_subdirectory")
  endif()
endforeach()
add_executable(consumer consumer.cpp)
target_link_libraries(consumer PRIVATE latentkv::latentkv)
CMAKE
printf '#include "latentkv/c_api.h"\nint main() { return lkv_version()[0] == 0; }\n' \
  >"$work/subdir/consumer.cpp"
cmake -S "$work/subdir" -B "$work/subdir/build" >"$work/subdir-configure.log" 2>&1 || {
  cat "$work/subdir-configure.log" >&2
  exit 1
}
step "ok"
