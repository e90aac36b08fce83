# Installing mproc (docs/install.md): `cmake --install`, GNUInstallDirs
# paths, DESTDIR honoured. Components, also the Debian packages of
# `make deb` (CPack, below):
#   Runtime      libmproc.so.MAJOR                        -> libmproc0
#   Development  headers, libmproc.so, libmproc.a, mproc.pc,
#                the CMake package (find_package(mproc))  -> libmproc-dev
#   Tools        mproc-manager and its man page, mproc(7) -> mproc-tools
#   Cluster      libmproc_cluster.a (only when MPI was found)
#                                                         -> libmproc-cluster-dev
set(MPROC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mproc)

install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development
        FILES_MATCHING PATTERN "*.h")
install(TARGETS mproc EXPORT mprocTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime NAMELINK_SKIP)
install(TARGETS mproc EXPORT mprocTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development NAMELINK_ONLY)
install(TARGETS mproc_static EXPORT mprocStaticTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development)
install(TARGETS mproc_manager_tool RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Tools)
install(EXPORT mprocTargets NAMESPACE mproc:: DESTINATION ${MPROC_CMAKE_DIR} COMPONENT Development)
install(EXPORT mprocStaticTargets NAMESPACE mproc:: DESTINATION ${MPROC_CMAKE_DIR}
        COMPONENT Development)
set(MPROC_COMPONENTS "library (Runtime, Development), mproc-manager (Tools)")
set(MPROC_HAVE_CLUSTER 0)
if(TARGET mproc_cluster)
  set(MPROC_HAVE_CLUSTER 1)
  # (src/cluster names the source tree's include/ as is: the build's only.)
  set_target_properties(mproc_cluster PROPERTIES EXPORT_NAME cluster INTERFACE_INCLUDE_DIRECTORIES
    "$<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/include>;$<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>")
  install(TARGETS mproc_cluster EXPORT mprocClusterTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Cluster)
  install(EXPORT mprocClusterTargets NAMESPACE mproc:: DESTINATION ${MPROC_CMAKE_DIR}
          COMPONENT Cluster)
  string(APPEND MPROC_COMPONENTS ", cluster (Cluster, MPI ${MPI_C_VERSION})")
else()
  string(APPEND MPROC_COMPONENTS "; not built: cluster (no MPI)")
endif()
# The man page of mproc-manager, from its --help by help2man (Debian's
# help2man; tools/deps.sh docs), when installed; not in the sanitizer and
# fuzz builds, whose program is no shipping one.
find_program(MPROC_HELP2MAN help2man)
if(MPROC_HELP2MAN AND NOT MPROC_SANITIZE AND NOT MPROC_FUZZ)
  set(mproc_man1 ${CMAKE_BINARY_DIR}/man/mproc-manager.1)
  add_custom_command(OUTPUT ${mproc_man1}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${MPROC_HELP2MAN} --no-info --no-discard-stderr --version-string=${PROJECT_VERSION}
            "--name=a standalone mproc manager server" --output=${mproc_man1}
            $<TARGET_FILE:mproc_manager_tool>
    COMMAND gzip -9nf ${mproc_man1}
    DEPENDS mproc_manager_tool VERBATIM)
  add_custom_target(mproc_man ALL DEPENDS ${mproc_man1}.gz)
  install(FILES ${mproc_man1}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT Tools)
  string(APPEND MPROC_COMPONENTS "; man page of mproc-manager")
else()
  string(APPEND MPROC_COMPONENTS "; no man page of mproc-manager (no help2man, or a sanitizer or fuzz build)")
endif()
# mproc(7), the overview, from docs/mproc.7.md by pandoc (Debian's pandoc;
# tools/deps.sh docs), when installed.
find_program(MPROC_PANDOC pandoc)
if(MPROC_PANDOC)
  set(mproc_man7 ${CMAKE_BINARY_DIR}/man/mproc.7)
  add_custom_command(OUTPUT ${mproc_man7}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_BINARY_DIR}/man
    COMMAND ${MPROC_PANDOC} --standalone --to man ${CMAKE_SOURCE_DIR}/docs/mproc.7.md -o ${mproc_man7}
    COMMAND gzip -9nf ${mproc_man7}
    DEPENDS ${CMAKE_SOURCE_DIR}/docs/mproc.7.md VERBATIM)
  add_custom_target(mproc_man7 ALL DEPENDS ${mproc_man7}.gz)
  install(FILES ${mproc_man7}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man7 COMPONENT Development)
  string(APPEND MPROC_COMPONENTS "; mproc(7)")
else()
  string(APPEND MPROC_COMPONENTS "; no mproc(7) (pandoc not found)")
endif()
set_target_properties(mproc_static PROPERTIES EXPORT_NAME mproc_static)
message(STATUS "mproc: install components: ${MPROC_COMPONENTS}")

include(CMakePackageConfigHelpers)
configure_package_config_file(cmake/mprocConfig.cmake.in ${CMAKE_BINARY_DIR}/mprocConfig.cmake
                              INSTALL_DESTINATION ${MPROC_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/mprocConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${CMAKE_BINARY_DIR}/mprocConfig.cmake ${CMAKE_BINARY_DIR}/mprocConfigVersion.cmake
        DESTINATION ${MPROC_CMAKE_DIR} COMPONENT Development)

# mproc.pc: the shared library by default; `pkg-config --static` adds what
# libmproc.a needs.
configure_file(cmake/mproc.pc.in ${CMAKE_BINARY_DIR}/mproc.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/mproc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
        COMPONENT Development)

# `make deb`: one .deb per component (cmake/package.cmake).
include(cmake/package.cmake)
