# Included before project() by .ci/detector_only.sh (CMAKE_PROJECT_TOP_LEVEL_INCLUDES): every
# find_package() but doctest's fails the configure, so the detector-only build cannot quietly
# start needing another package (libpqxx, Boost, prometheus-cpp, mimetic, nlohmann_json, OpenSSL).
macro(ndrguard_only_doctest method package_name)
  if(NOT "${package_name}" STREQUAL "doctest")
    message(FATAL_ERROR "the detector-only build asked for package ${package_name}: "
                        "it may need only a compiler, CMake and doctest")
  endif()
  # doctest: nothing set here, so find_package() goes on to CMake's own search.
endmacro()
cmake_language(SET_DEPENDENCY_PROVIDER ndrguard_only_doctest SUPPORTED_METHODS FIND_PACKAGE)
