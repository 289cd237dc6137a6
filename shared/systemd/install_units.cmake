# Run by `cmake --install` (see CMakeLists.txt beside it): fills in the
# install-time paths and installs the units.
foreach(var TB_BINDIR TB_DOCDIR TB_UNITDIR)
    if(NOT IS_ABSOLUTE "${${var}}")
        set(${var} "${CMAKE_INSTALL_PREFIX}/${${var}}")
    endif()
endforeach()
foreach(unit tapbus-collector.service tapbus-probe@.service tapbus-gateway.service)
    configure_file("${TB_UNITS_IN}/${unit}.in" "${TB_UNITS_OUT}/${unit}" @ONLY)
    file(INSTALL DESTINATION "${TB_UNITDIR}" TYPE FILE
         PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
         FILES "${TB_UNITS_OUT}/${unit}")
endforeach()
