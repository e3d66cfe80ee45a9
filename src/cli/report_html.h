// The self-contained HTML report of `qforge compare --html` / `qforge analyze --html`: the data
// as JSON, Chart.js (Debian's libjs-chart.js) and the page's own script, all inlined into one
// file that needs no network.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace qforge::cli {

// Where Chart.js is read from: $QFORGE_CHARTJS if set, else Debian's libjs-chart.js file.
std::string ChartJsPath();

// Throws Error (naming the file and the package) when Chart.js cannot be read.
void CheckHtmlReportAvailable();

struct HtmlReport {
  std::string title;
  nlohmann::json compare;   // CompareToJson, or null: no table / trade-off chart
  nlohmann::json analysis;  // AnalysisToJson (report_analysis.h), or null: no per-layer charts
};

// The page. Every chart canvas has a fixed id (chart-tradeoff, chart-error, chart-sensitivity,
// hist-0, hist-1, ...); after drawing, the page's script sets data-rendered="1" on each canvas
// whose pixels are not all blank, data-rect="x,y,w,h" (its position in CSS pixels) and
// data-charts="N" on <body> (canvases drawn), so a headless browser can check the result.
std::string RenderHtmlReport(const HtmlReport& report);

// Writes RenderHtmlReport atomically.
void WriteHtmlReport(const HtmlReport& report, const std::string& path);

}  // namespace qforge::cli
