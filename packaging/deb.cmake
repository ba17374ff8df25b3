# The Debian package (`make deb`, configured with -DSRV_DEB=ON and
# CMAKE_INSTALL_PREFIX=/usr): /usr/bin/srv, srv(1) generated from --help by
# help2man (with packaging/srv.h2m), the srv@.service/srv@.socket templates
# in /lib/systemd/system, and an example config; CPack's DEB generator.

find_program(HELP2MAN help2man)
find_program(GZIP gzip REQUIRED)
if(NOT HELP2MAN)
  message(FATAL_ERROR "SRV_DEB: help2man is needed for the man page (apt-get install help2man)")
endif()

set(SRV_MAN ${CMAKE_BINARY_DIR}/srv.1.gz)
add_custom_command(
  OUTPUT ${SRV_MAN}
  COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section=1
          --name=${CMAKE_PROJECT_DESCRIPTION}
          --include=${CMAKE_SOURCE_DIR}/packaging/srv.h2m
          --output=${CMAKE_BINARY_DIR}/srv.1 $<TARGET_FILE:srv>
  COMMAND ${GZIP} -9nf ${CMAKE_BINARY_DIR}/srv.1
  DEPENDS srv ${CMAKE_SOURCE_DIR}/packaging/srv.h2m
  COMMENT "srv.1.gz (help2man)")
add_custom_target(srv_man ALL DEPENDS ${SRV_MAN})

set(SRV_DEB_MAINTAINER "srv authors <srv@example.org>" CACHE STRING
    "The package's Maintainer (and changelog signature)")

# A native package's changelog, one entry for this version.
string(TIMESTAMP SRV_DEB_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
file(WRITE ${CMAKE_BINARY_DIR}/changelog
     "srv (${PROJECT_VERSION}) unstable; urgency=medium\n\n"
     "  * Built from the srv source tree with CPack.\n\n"
     " -- ${SRV_DEB_MAINTAINER}  ${SRV_DEB_DATE}\n")
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/changelog.gz
  COMMAND ${GZIP} -9nkf ${CMAKE_BINARY_DIR}/changelog
  DEPENDS ${CMAKE_BINARY_DIR}/changelog)
add_custom_target(srv_changelog ALL DEPENDS ${CMAKE_BINARY_DIR}/changelog.gz)

install(FILES ${SRV_MAN} DESTINATION share/man/man1)
install(FILES packaging/srv@.service packaging/srv@.socket
        DESTINATION /lib/systemd/system PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
install(FILES packaging/example.conf DESTINATION share/doc/srv/examples)
install(DIRECTORY DESTINATION /etc/srv)   # for NAME.conf, empty
install(FILES README.md ${CMAKE_BINARY_DIR}/changelog.gz DESTINATION share/doc/srv)
install(FILES LICENSE DESTINATION share/doc/srv RENAME copyright)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME srv)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "${SRV_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${CMAKE_PROJECT_DESCRIPTION}")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "srv serves PEP 3333 applications from pre-forked workers, each running
one libev loop with every request in its own greenlet; with gevent it
shares gevent's loop.  Reload with SIGHUP, configure with --config.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION httpd)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_STRIP_FILES ON)
# Shared libraries (libc6, libev4, libpython3.X) with versions from
# dpkg-shlibdeps where it exists; the embedded interpreter's version comes
# from the Python found above either way.
set(SRV_DEB_LIBPYTHON libpython${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR})
find_program(DPKG_SHLIBDEPS dpkg-shlibdeps)
if(DPKG_SHLIBDEPS)
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3-greenlet")
else()
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "libc6, libev4, ${SRV_DEB_LIBPYTHON}, python3-greenlet")
endif()
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "python3-gevent")
include(CPack)
