// `qforge compare MODEL --data fashion-mnist`: every quantization method on one model, one table
// (size, latency, throughput, accuracy, agreement with fp32, time spent quantizing).
#include <fmt/format.h>

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/report_compare.h"
#include "cli/report_html.h"
#include "qforge/data/atomic_file.h"

namespace qforge::cli {
namespace {

struct CompareCliOptions {
  CompareOptions compare;
  std::string data;
  std::string methods = "fp32,dynamic,static,qat";
  std::string format = "table";
  std::string out;
  std::string html;
  bool no_latency = false;
};

std::vector<std::string> SplitList(const std::string& text) {
  std::vector<std::string> items;
  size_t start = 0;
  while (start <= text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    if (comma > start) items.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return items;
}

int RunCompareCommand(CompareCliOptions o) {
  if (o.data != "fashion-mnist")
    throw Error("unknown data set '" + o.data + "' (supported: fashion-mnist)");
  if (o.format != "table" && o.format != "markdown" && o.format != "csv" && o.format != "json")
    throw Error("--format must be table, markdown, csv or json, got '" + o.format + "'");
  o.compare.methods = SplitList(o.methods);
  if (o.compare.methods.empty()) throw Error("--methods is empty (e.g. fp32,static)");
  o.compare.latency = !o.no_latency;
  if (!o.html.empty()) CheckHtmlReportAvailable();  // fail before the long work
  const CompareResult r = RunCompare(o.compare);
  const std::string text = FormatCompare(r, o.compare, o.format);
  if (!o.html.empty()) {
    HtmlReport report;
    report.title = "qforge compare: " + o.compare.model;
    report.compare = CompareToJson(r, o.compare);
    WriteHtmlReport(report, o.html);
    fmt::print(stderr, "compare: wrote {}\n", o.html);
  }
  if (!o.out.empty()) {
    data::WriteFileAtomic(o.out, text);
    fmt::print(stderr, "compare: wrote {}\n", o.out);
  } else {
    std::cout << text;
  }
  return 0;
}

}  // namespace

Command AddCompareCommand(CLI::App& root) {
  auto o = std::make_shared<CompareCliOptions>();
  CLI::App* app = root.add_subcommand(
      "compare", "Compare quantization methods on one model: size, latency, accuracy");
  app->add_option("MODEL", o->compare.model, "fp32 ONNX model (an image classifier)")->required();
  app->add_option("--data", o->data, "Data set: fashion-mnist")->required();
  app->add_option("--data-dir", o->compare.data_dir, "Where the data set's IDX files are")
      ->capture_default_str();
  app->add_option("--methods", o->methods,
                  "Comma-separated: " + fmt::format("{}", fmt::join(KnownMethods(), ", ")))
      ->capture_default_str();
  app->add_option("--calib-samples", o->compare.calib_samples,
                  "static: calibration images (training split, seeded shuffle)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--calib-method", o->compare.calib_method,
                  "static: observer (minmax, moving_average, percentile, entropy, mse)")
      ->check(CLI::IsMember({"minmax", "moving_average", "percentile", "entropy", "mse"}))
      ->capture_default_str();
  app->add_option("--qat-epochs", o->compare.qat_epochs, "qat: training epochs")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--qat-limit", o->compare.qat_limit,
                  "qat: training images per epoch (60000: the whole training split)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--batch-large", o->compare.batch_large, "The larger latency batch")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--eval-batch", o->compare.eval_batch, "Images per run for accuracy")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--limit", o->compare.limit, "Evaluate only the first N test images")
      ->check(CLI::PositiveNumber);
  app->add_option("--min-time", o->compare.timing.min_time,
                  "Each latency cell: time runs for at least S seconds (>= 10 runs)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app->add_option("--warmup", o->compare.timing.warmup, "Untimed runs before each latency cell")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app->add_flag("--no-latency", o->no_latency, "Skip the latency columns (faster)");
  app->add_option("--format", o->format, "table, markdown, csv or json")->capture_default_str();
  app->add_option("--out", o->out, "Write the table to FILE instead of stdout");
  app->add_option("--keep-models", o->compare.keep_dir,
                  "Write each method's model file into DIR and keep it (default: a temp dir)");
  app->add_option("--html", o->html, "Also write a self-contained HTML report (table + chart)");
  app->footer(R"EX(Example:
  $ qforge compare models/fmnist_cnn.onnx --data fashion-mnist --methods fp32,static
  method  W/A bits  size  vs fp32  b1 1T ms  ...  top-1 %  delta pts  agree %  quantize s
  ...

Each method writes its model file (static: calibrate + quantize --method static -> .qf) into a
temporary directory; every file is then measured the way 'qforge eval' (accuracy, on the
test split) and 'qforge bench' (latency on random inputs, median / p90 ms) measure it. Size is
the file's size on disk; agreement is the share of test images classified as fp32 classifies
them. Progress goes to stderr. See docs/report.md.)EX");
  return {app, [o] { return RunCompareCommand(*o); }};
}

}  // namespace qforge::cli
