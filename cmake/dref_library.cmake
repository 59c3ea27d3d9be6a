# Warnings and sanitizers travel through a private interface target, never
# through CMAKE_CXX_FLAGS.
add_library(dref_internal INTERFACE)
target_compile_options(dref_internal INTERFACE -Wall -Wextra -Wpedantic)
if(DREF_WERROR)
  target_compile_options(dref_internal INTERFACE -Werror)
endif()
if(DREF_SANITIZE)
  # -fno-sanitize=null: CAF 0.17's init_fun_factory binds a reference to null
  # when spawning function-based actors (see docs/dependencies.md).
  target_compile_options(dref_internal INTERFACE
    -fsanitize=address,undefined -fno-sanitize=null -fno-omit-frame-pointer
    -fno-sanitize-recover=undefined)
  target_link_options(dref_internal INTERFACE -fsanitize=address,undefined)
endif()

# dref_add_library(name SOURCES ... DEPS ...): one library per folder, public
# headers under <folder>/include, internals under <folder>/src.
function(dref_add_library name)
  cmake_parse_arguments(arg "" "" "SOURCES;DEPS" ${ARGN})
  add_library(dref_${name} ${arg_SOURCES})
  add_library(dref::${name} ALIAS dref_${name})
  target_include_directories(dref_${name}
    PUBLIC $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(dref_${name} PUBLIC ${arg_DEPS} PRIVATE dref_internal)
endfunction()
