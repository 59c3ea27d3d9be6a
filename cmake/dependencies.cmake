# All dependencies come from Debian 12 packages (see docs/dependencies.md).
find_package(Threads REQUIRED)

# CAF 0.17.6: Debian ships neither a CMake config nor a .pc file.
find_path(CAF_INCLUDE_DIR caf/all.hpp REQUIRED)
foreach(c core io openssl)
  find_library(CAF_${c}_LIB caf_${c} REQUIRED)
  if(NOT TARGET CAF::${c})
    add_library(CAF::${c} UNKNOWN IMPORTED)
    set_target_properties(CAF::${c} PROPERTIES IMPORTED_LOCATION ${CAF_${c}_LIB}
                          INTERFACE_INCLUDE_DIRECTORIES ${CAF_INCLUDE_DIR})
  endif()
endforeach()
set_property(TARGET CAF::core APPEND PROPERTY INTERFACE_LINK_LIBRARIES Threads::Threads)
set_property(TARGET CAF::io APPEND PROPERTY INTERFACE_LINK_LIBRARIES CAF::core)
set_property(TARGET CAF::openssl APPEND PROPERTY INTERFACE_LINK_LIBRARIES CAF::io)

find_package(Protobuf REQUIRED)
find_package(RocksDB 7 CONFIG REQUIRED)
find_package(fmt 9 CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(nlohmann_json 3 CONFIG REQUIRED)
if(DREF_ENABLE_TESTING)
  find_package(doctest CONFIG REQUIRED)
endif()
