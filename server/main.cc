// amaters-server: the real-time server (docs/design.md §5; docs/deployment-guide.md).
//
//   amaters-server [start] [--config=FILE] [--set section.key=value ...] [shortcut flags]
//   amaters-server stop|status [--config=FILE ...]     signal / query the running server
//   amaters-server validate-config [--config=FILE ...] check a configuration and exit
//   amaters-server restore FILE --data-dir=DIR         a data directory from a snapshot file
//   amaters-server version | --generate-config | --help
//
// With no arguments it starts a single-node cluster on the embedded defaults (data in ./data
// of the directory the command was started from, client gRPC on 127.0.0.1:7878, admin HTTP on
// 127.0.0.1:9090) and serves until SIGTERM or SIGINT. SIGHUP re-reads the configuration.
#include "server/server_main.h"

int main(int argc, char** argv) {
  return amaters::server::ServerMain(argc, argv, /*test_faults=*/nullptr);
}
