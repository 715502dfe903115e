"""Helpers shared by the engine's BUILD files."""

def engine_sources():
    """Exports this package's .h/.cc files to //engine:purity_test."""
    native.filegroup(
        name = "sources",
        srcs = native.glob([
            "*.h",
            "*.cc",
        ]),
        visibility = ["//engine:__pkg__"],
    )
