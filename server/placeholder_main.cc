// Placeholder for amaters-server. The real-time server (gRPC, WAL files, RocksDB, admin HTTP)
// is the subject of a later issue; until it lands, this binary says so plainly instead of
// pretending to serve.
#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "version") == 0) {
    std::printf("amaters-server 0.1.0-dev (placeholder: server not implemented yet)\n");
    return 0;
  }
  std::fprintf(stderr,
               "amaters-server: the real-time server is not implemented yet.\n"
               "What exists today: the engine (Raft, WAL, node, key-value state machine) and\n"
               "the deterministic simulator that runs it:\n"
               "  ./bazelw test //...\n"
               "  ./bazelw run //sim -- --seed=1\n"
               "See README.md and docs/architecture.md. Nothing was started; exiting.\n");
  return 1;
}
