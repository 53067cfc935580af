// lepus::report — the HTML fit report of `lepus report` (docs/report.md): one self-contained
// offline page (inline SVG from lepus/report/svg.h, a little inline CSS and script for search and
// sorting; nothing is fetched) built from a results file of `lepus fit` / `scan` / `demo`, and
// optionally toys files and the fit input.
//
// Dependencies: io (results reader, fit-input reader, atomic outputs) -> engine. Nothing here
// runs a fit.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "lepus/engine/model.h"
#include "lepus/io/results_reader.h"

namespace lepus::report {

struct ReportOptions {
  int top = 30;         // parameters in the ranked impacts chart and the correlation map
  std::string title;    // page title; "" = "lepus fit report: <input>"
  std::string svg_dir;  // also write each plot as DIR/<name>.svg ("" = no)
};

// Everything a report is made of. `results` is required; the rest is optional.
struct ReportSources {
  io::ResultsFile results;
  // From the fit input (--input), used where the results file lacks them (files written before
  // the results held the fitted data and the bin edges): the data of the fitted bins and the
  // channels with their axes.
  std::string input_path;
  std::vector<double> input_data;
  std::vector<engine::Channel> input_channels;
  std::vector<io::ToysFile> toys;
};

struct Report {
  std::string html;
  std::vector<std::pair<std::string, std::string>> svgs;  // (file name, standalone SVG)
  std::vector<std::string> sections;                      // ids of the sections present
  std::vector<std::string> notes;                         // what was left out and why
};

// Builds the page. Throws std::invalid_argument for options out of range (top < 1).
Report BuildReport(const ReportSources& sources, const ReportOptions& options = {});

// Reads the results (io::ReadResultsFile), the toys files and, when given or needed and
// present, the fit input; builds the report and writes it atomically to `output`, and the SVGs
// to options.svg_dir (created if missing). `input_path` "" = use the input recorded in the
// results file when the results lack the data or bin edges and that file exists. Throws
// io::InputError for unreadable or foreign files (naming the file and dataset).
Report WriteReport(const std::string& results_path, const std::string& input_path,
                   const std::vector<std::string>& toys_paths, const std::string& output,
                   const ReportOptions& options = {});

}  // namespace lepus::report
