# The Debian packages (`make deb`: cpack -G DEB in the release build), one
# per install component. Dependencies on other packages come from
# dpkg-shlibdeps; libmproc0 carries a shlibs file and the ldconfig trigger.
set(CPACK_PACKAGE_NAME mproc)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "mproc")
set(MPROC_DEB_MAINTAINER "mproc maintainers <mproc@localhost>" CACHE STRING "Maintainer field of the .deb files")
set(CPACK_PACKAGE_CONTACT "${MPROC_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Python's multiprocessing and concurrent.futures for C")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL Runtime Development Tools)
if(TARGET mproc_cluster)
  list(APPEND CPACK_COMPONENTS_ALL Cluster)
endif()
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_ENABLE_COMPONENT_DEPENDS ON)

set(mproc_pkgver "${PROJECT_VERSION}")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_NAME libmproc${PROJECT_VERSION_MAJOR})
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS_POLICY ">=")
file(WRITE ${CMAKE_BINARY_DIR}/deb-runtime/triggers "activate-noawait ldconfig\n")
set(CPACK_DEBIAN_RUNTIME_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/deb-runtime/triggers)
set(CPACK_COMPONENT_RUNTIME_DESCRIPTION
    "Python's multiprocessing for C - shared library\n mproc re-creates Python's multiprocessing and concurrent.futures in C11:\n processes under fork, spawn and forkserver, queues, pipes, locks, shared\n values and memory, pools, futures and managers.")

set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_NAME libmproc-dev)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEVELOPMENT_PACKAGE_DEPENDS
    "libmproc${PROJECT_VERSION_MAJOR} (= ${mproc_pkgver}), libcbor-dev, libssl-dev")
set(CPACK_COMPONENT_DEVELOPMENT_DESCRIPTION
    "Python's multiprocessing for C - development files\n The headers, the static library, mproc.pc and the CMake package\n (find_package(mproc)) of mproc.")

set(CPACK_DEBIAN_TOOLS_PACKAGE_NAME mproc-tools)
set(CPACK_DEBIAN_TOOLS_PACKAGE_SECTION utils)
set(CPACK_COMPONENT_TOOLS_DESCRIPTION
    "Python's multiprocessing for C - tools\n mproc-manager, a standalone manager server that Python's\n multiprocessing.managers clients and mproc programs can connect to.")

set(CPACK_DEBIAN_CLUSTER_PACKAGE_NAME libmproc-cluster-dev)
set(CPACK_DEBIAN_CLUSTER_PACKAGE_SECTION libdevel)
if(MPROC_MPI STREQUAL "openmpi")
  set(mproc_mpidev libopenmpi-dev)
else()
  set(mproc_mpidev libmpich-dev)
endif()
set(CPACK_DEBIAN_CLUSTER_PACKAGE_DEPENDS "libmproc-dev (= ${mproc_pkgver}), ${mproc_mpidev}")
set(CPACK_COMPONENT_CLUSTER_DESCRIPTION
    "Python's multiprocessing for C - the pool over MPI ranks\n libmproc_cluster.a: mproc's process pool over MPI ranks (the twin of\n mpi4py.futures), built against MPICH.")
include(CPack)
