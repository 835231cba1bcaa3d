# toolchain-aarch64.cmake: cross-compile wref for 64-bit Arm Linux with Debian's cross compiler.
#
#   cmake -S . -B build/aarch64 -G Ninja --toolchain cmake/toolchain-aarch64.cmake
#
# Needs gcc-aarch64-linux-gnu and the arm64 -dev packages of the dependencies through multiarch
# (dpkg --add-architecture arm64; libunwind-dev:arm64 libdw-dev:arm64 libcmocka-dev:arm64);
# scripts/setup-debian.sh installs them. Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(WREF_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_C_COMPILER ${WREF_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${WREF_CROSS_TRIPLE}-g++)

# Headers and libraries of the target only; programs (python3, valgrind...) of the host.
set(CMAKE_FIND_ROOT_PATH /usr/${WREF_CROSS_TRIPLE})
set(CMAKE_LIBRARY_ARCHITECTURE ${WREF_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# pkg-config: the multiarch .pc files of the arm64 packages, never the host's.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${WREF_CROSS_TRIPLE}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# CTest runs target programs under qemu-user. No -L prefix: the multiarch libc6:arm64 provides
# the loader (/lib/ld-linux-aarch64.so.1) and finds libcmocka & co. in /usr/lib/aarch64-linux-gnu;
# with -L /usr/aarch64-linux-gnu (the cross libc) qemu 7.2 hangs threaded programs at start.
find_program(WREF_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(WREF_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${WREF_QEMU_AARCH64})
endif()
