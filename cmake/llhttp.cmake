# llhttp 8.1.0 as Debian's node-llhttp installs it: C sources in /usr/share/llhttp and the
# header in /usr/share/include/llhttp. Compiled here into a static library in strict mode.
# Lenient flags are never set by sluice (see proxy/http1_parser.cc).
set(LLHTTP_SOURCE_DIR "/usr/share/llhttp" CACHE PATH "llhttp C sources (node-llhttp)")
set(LLHTTP_INCLUDE_DIR "/usr/share/include/llhttp" CACHE PATH "llhttp header (node-llhttp)")

foreach(f api.c http.c llhttp.c)
  if(NOT EXISTS "${LLHTTP_SOURCE_DIR}/${f}")
    message(FATAL_ERROR "${LLHTTP_SOURCE_DIR}/${f} not found: apt-get install node-llhttp")
  endif()
endforeach()
file(STRINGS "${LLHTTP_INCLUDE_DIR}/llhttp.h" _llhttp_minor REGEX "define LLHTTP_VERSION_MINOR")
file(STRINGS "${LLHTTP_INCLUDE_DIR}/llhttp.h" _llhttp_major REGEX "define LLHTTP_VERSION_MAJOR")
if(NOT _llhttp_major MATCHES " 8$" OR NOT _llhttp_minor MATCHES " 1$")
  message(FATAL_ERROR "sluice is built and tested against llhttp 8.1: found ${_llhttp_major} ${_llhttp_minor}")
endif()

add_library(llhttp STATIC
  ${LLHTTP_SOURCE_DIR}/api.c
  ${LLHTTP_SOURCE_DIR}/http.c
  ${LLHTTP_SOURCE_DIR}/llhttp.c)
target_include_directories(llhttp SYSTEM PUBLIC ${LLHTTP_INCLUDE_DIR})
target_compile_definitions(llhttp PUBLIC LLHTTP_STRICT_MODE=1)
# Generated code from another project: build it quietly, our warnings apply to our code.
target_compile_options(llhttp PRIVATE -w)
# Never one unity file: its generated sources declare the same callbacks differently.
set_target_properties(llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON UNITY_BUILD OFF)
