"""Compiler options shared by every target of ours (docs/design.md §4.5).

Third-party code comes precompiled from Debian, so these flags only ever see our sources.
The C++ standard is set once in .bazelrc (--cxxopt=-std=c++17) so that every target agrees.
"""

AMATERS_COPTS = [
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wnon-virtual-dtor",
    "-Wno-unused-parameter",
]

# Generated protobuf/gRPC sources are not ours; they only get the defaults.
GENERATED_COPTS = [
    "-Wno-unused-parameter",
]
