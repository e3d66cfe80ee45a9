// qforge command-line entry point: parses the command line and runs one subcommand, turning
// every error into one "qforge: error: ..." line on stderr (exit 1; usage errors exit 2).
#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"
#include "qforge/tensor/tensor.h"

namespace {

int PrintError(const std::string& message, int code) {
  std::fflush(stdout);
  fmt::print(stderr, "qforge: error: {}\n", qforge::cli::OneLine(message));
  return code;
}

int Main(int argc, char** argv) {
  CLI::App app{"qforge: import, run, evaluate, benchmark and analyze quantization of ONNX models"};
  app.name("qforge");
  app.require_subcommand(1);
  app.set_version_flag("--version", "qforge 0.1.0");
  app.footer(
      "Run 'qforge COMMAND --help' for a command's options and a worked example.\n"
      "Errors are printed as one line 'qforge: error: ...'; the exit code is 1 for errors,\n"
      "2 for command-line usage errors.");
  std::vector<qforge::cli::Command> commands = {
      qforge::cli::AddInfoCommand(app),      qforge::cli::AddRunCommand(app),
      qforge::cli::AddEvalCommand(app),      qforge::cli::AddBenchCommand(app),
      qforge::cli::AddFormatsCommand(app),   qforge::cli::AddQuantizeCommand(app),
      qforge::cli::AddCalibrateCommand(app), qforge::cli::AddCompareCommand(app),
      qforge::cli::AddAnalyzeCommand(app),   qforge::cli::AddQatCommand(app),
      qforge::cli::AddTrainCommand(app),
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --help-all, --version: print, exit 0
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string help = "qforge --help";
    for (const auto& c : commands)
      if (c.app->parsed()) help = "qforge " + c.app->get_name() + " --help";
    return PrintError(std::string(e.what()) + " (run '" + help + "')", 2);
  }
  for (const auto& c : commands)
    if (c.app->parsed()) return c.run();
  return PrintError("no command given (run 'qforge --help')", 2);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const qforge::Error& e) {
    return PrintError(e.what(), 1);
  } catch (const std::bad_alloc&) {
    return PrintError("out of memory", 1);
  } catch (const std::exception& e) {
    return PrintError(e.what(), 1);
  } catch (...) {
    return PrintError("unknown internal error", 1);
  }
}
