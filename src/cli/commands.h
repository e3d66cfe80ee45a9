// The qforge subcommands: each Add*Command registers its options on the root app and returns
// the function that runs it once the command line has been parsed.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace qforge::cli {

struct Command {
  CLI::App* app = nullptr;   // the subcommand, to test app->parsed() after parsing
  std::function<int()> run;  // runs it; returns the exit code, throws on error
};

Command AddInfoCommand(CLI::App& root);       // cmd_info.cc
Command AddRunCommand(CLI::App& root);        // cmd_run.cc
Command AddEvalCommand(CLI::App& root);       // cmd_eval.cc
Command AddBenchCommand(CLI::App& root);      // cmd_bench.cc
Command AddFormatsCommand(CLI::App& root);    // cmd_formats.cc
Command AddCalibrateCommand(CLI::App& root);  // cmd_calibrate.cc
Command AddQuantizeCommand(CLI::App& root);   // cmd_quantize.cc
Command AddQatCommand(CLI::App& root);        // cmd_qat.cc
Command AddCompareCommand(CLI::App& root);    // cmd_compare.cc
Command AddAnalyzeCommand(CLI::App& root);    // cmd_analyze.cc
Command AddTrainCommand(CLI::App& root);      // cmd_train.cc

}  // namespace qforge::cli
