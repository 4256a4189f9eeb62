// quantd: the quantization service and its offline one-shot command.
#include <iostream>
#include <string>
#include <vector>

#include "quantd/server/commands.h"

#ifndef QUANTD_VERSION
#define QUANTD_VERSION "dev"
#endif

namespace {

constexpr char kUsage[] =
    "usage: quantd <command> [args]\n"
    "\n"
    "Commands:\n"
    "  serve      run the gRPC service (see `quantd serve --help`)\n"
    "  quantize   convert one model offline (see `quantd quantize --help`)\n"
    "  presets    list the named recipes for deployment targets\n"
    "  version    print the version\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << kUsage;
    return 2;
  }
  std::string cmd = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "quantize") return quantd::server::QuantizeCommand(args);
  if (cmd == "serve") return quantd::server::ServeCommand(args);
  if (cmd == "presets") return quantd::server::PresetsCommand(args);
  if (cmd == "version" || cmd == "--version") {
    std::cout << "quantd " << QUANTD_VERSION << "\n";
    return 0;
  }
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "quantd: unknown command '" << cmd << "'\n" << kUsage;
  return 2;
}
