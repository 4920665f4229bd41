# Install rules and the CMake package: `cmake --install <build> --prefix P`, then consumers use
# find_package(latentkv CONFIG) with CMAKE_PREFIX_PATH=P and link latentkv::latentkv.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(LATENTKV_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/latentkv)
# Installed as latentkv::headers, the same name as the in-tree alias.
set_target_properties(latentkv_headers PROPERTIES EXPORT_NAME headers)

install(TARGETS latentkv latentkv_headers EXPORT latentkvTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/latentkv DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT latentkvTargets NAMESPACE latentkv:: DESTINATION ${LATENTKV_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/latentkvConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/latentkvConfig.cmake
                              INSTALL_DESTINATION ${LATENTKV_CMAKE_DIR})
# 0.x: minor versions may break the API.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/latentkvConfigVersion.cmake
                                  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/latentkvConfig.cmake
              ${PROJECT_BINARY_DIR}/latentkvConfigVersion.cmake
        DESTINATION ${LATENTKV_CMAKE_DIR})
