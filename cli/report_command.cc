// `lepus report RESULTS.h5 -o report.html`: the HTML fit report (lepus/report/report.h,
// docs/report.md): one self-contained offline page with the summary, the POIs, the ranked pulls
// and impacts, grouped impacts, pre-/post-fit distributions, correlations, scans and toy pulls
// that the results file (and the --toys files) hold; --svg-dir also writes every plot as a
// standalone SVG. Also used by `lepus fit --report` and `lepus demo`.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "args.h"
#include "command.h"
#include "exit_codes.h"
#include "html_report.h"
#include "lepus/io/output.h"
#include "lepus/report/report.h"
#include "likelihood_setup.h"
#include "progress.h"

namespace lepus::cli {

namespace {

struct ReportArgs {
  std::string results;
  std::string input;
  std::vector<std::string> toys;
  std::string output;
  int top = 30;
  std::string svg_dir;
  std::string title;
};

bool IsChargeAxisName(const std::string& name) { return name == "charge" || name == "q"; }

}  // namespace

std::vector<std::pair<std::string, std::vector<std::string>>> ReportProjections(
    const engine::Model& model) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  for (const auto& c : model.channels) {
    if (c.axes.size() < 2) continue;
    bool edges = true;
    int qaxis = -1;
    for (std::size_t k = 0; k < c.axes.size(); ++k) {
      edges = edges && !c.axes[k].edges.empty();
      if (IsChargeAxisName(c.axes[k].name) && c.axes[k].edges.size() >= 3 &&
          c.axes[k].edges.size() <= 4)
        qaxis = static_cast<int>(k);
    }
    if (!edges) continue;
    for (int k = 0; k < static_cast<int>(c.axes.size()); ++k) {
      if (k == qaxis) continue;
      out.push_back({c.name, {c.axes[k].name}});
      if (qaxis >= 0)
        out.push_back({c.name, k < qaxis
                                   ? std::vector<std::string>{c.axes[k].name, c.axes[qaxis].name}
                                   : std::vector<std::string>{c.axes[qaxis].name, c.axes[k].name}});
    }
  }
  return out;
}

void WriteHtmlReport(const std::string& results, const std::string& input,
                     const std::vector<std::string>& toys, const std::string& output, int top,
                     const std::string& svg_dir, const std::string& title, std::ostream& log) {
  const auto t0 = std::chrono::steady_clock::now();
  report::ReportOptions opt;
  opt.top = top;
  opt.svg_dir = svg_dir;
  opt.title = title;
  const report::Report rep = report::WriteReport(results, input, toys, output, opt);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (const auto& n : rep.notes) log << "lepus: report: not shown: " << n << "\n";
  std::string sections;
  for (const auto& s : rep.sections) sections += (sections.empty() ? "" : ", ") + s;
  if (output != "-")
    log << "lepus: wrote the report " << output << " ("
        << HumanCount(static_cast<double>(rep.html.size())) << "B, " << rep.svgs.size()
        << " plots; " << sections << ") in " << FormatSeconds(seconds) << "\n";
  if (!svg_dir.empty())
    log << "lepus: wrote " << rep.svgs.size() << " SVG files to " << svg_dir << "\n";
}

Command AddReportCommand(CLI::App& parent) {
  auto a = std::make_shared<ReportArgs>();
  CLI::App* sub = parent.add_subcommand(
      "report",
      "HTML fit report of a results file: one offline page with the summary, POIs, ranked pulls "
      "and impacts, grouped impacts, pre-/post-fit distributions, correlations, scans and toys "
      "(docs/report.md)");
  sub->add_option("results", a->results, "results file of lepus fit -o / scan -o / demo (HDF5)")
      ->required()
      ->type_name("RESULTS.h5");
  sub->add_option("-o,--output", a->output, "the HTML page to write ('-' = stdout)")
      ->required()
      ->type_name("FILE");
  sub->add_option("--input", a->input,
                  "the fit input, for the data and bin edges of results files that lack them "
                  "(default: the input recorded in the results, when needed and present)")
      ->type_name("FILE");
  sub->add_option("--toys", a->toys, "toys file of lepus toys -o: pull histograms (repeatable)")
      ->type_name("FILE")
      ->allow_extra_args(false);
  sub->add_option("--top", a->top, "parameters in the ranked impacts chart and the correlation map")
      ->type_name("N")
      ->capture_default_str()
      ->transform(IntegerArg(1, 100000));
  sub->add_option("--svg-dir", a->svg_dir, "also write every plot as a standalone SVG file here")
      ->type_name("DIR");
  sub->add_option("--title", a->title, "page title (default: from the input's name)")
      ->type_name("TEXT");
  return {sub, [a] {
            std::vector<std::string> inputs = {a->results};
            if (!a->input.empty()) inputs.push_back(a->input);
            inputs.insert(inputs.end(), a->toys.begin(), a->toys.end());
            io::CheckOutputs({{"-o", a->output}}, inputs);
            WriteHtmlReport(a->results, a->input, a->toys, a->output, a->top, a->svg_dir, a->title,
                            std::cerr);
            return kExitOk;
          }};
}

}  // namespace lepus::cli
