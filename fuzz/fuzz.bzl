"""One libFuzzer target = a library holding LLVMFuzzerTestOneInput, the fuzzer binary and the
corpus replay test (docs/fuzzing.md)."""

load("@rules_cc//cc:defs.bzl", "cc_binary", "cc_library", "cc_test")
load("//tools:copts.bzl", "AMATERS_COPTS")

def amaters_fuzz_target(name, srcs, deps, replay_size = "small"):
    """Defines <name>_lib, <name>_fuzzer (manual, --config=fuzz) and <name>_corpus_test.

    The corpus test replays every file of fuzz/corpus/<name>/ and fuzz/regressions/<name>/
    through the same LLVMFuzzerTestOneInput, with fuzz/replay_main.cc as main (gcc, asan).
    """
    cc_library(
        name = name + "_lib",
        testonly = True,
        srcs = srcs,
        copts = AMATERS_COPTS,
        deps = deps,
        # The fuzzer entry point is only referenced by libFuzzer's or the replay main.
        alwayslink = True,
    )

    # libFuzzer binary: ./bazelw --output_base=/root/.cache/bazel-fuzz build --config=fuzz
    # //fuzz:<name>_fuzzer (fuzz/run.sh does it). --config=fuzz links -fsanitize=fuzzer, which
    # supplies main().
    cc_binary(
        name = name + "_fuzzer",
        testonly = True,
        copts = AMATERS_COPTS,
        # Bazel links with the C driver (clang, not clang++), which leaves out UBSan's C++
        # runtime (the vptr check's __ubsan_vptr_type_cache); this flag brings it in.
        linkopts = ["-fsanitize-link-c++-runtime"],
        tags = ["manual"],
        deps = [":" + name + "_lib"],
    )

    corpus = native.glob(["corpus/" + name + "/**"])
    regressions = native.glob(["regressions/" + name + "/**"])
    cc_test(
        name = name + "_corpus_test",
        size = replay_size,
        args = [
            "fuzz/corpus/" + name,
            "fuzz/regressions/" + name,
        ],
        data = corpus + regressions,
        deps = [
            ":" + name + "_lib",
            ":replay_main",
        ],
    )
