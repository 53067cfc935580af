// The HTML report of a results file (report_command.cc), shared by `lepus report`,
// `lepus fit --report` and `lepus demo`.
#pragma once

#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

#include "lepus/engine/model.h"

namespace lepus::cli {

// Writes the HTML report of a results file (report_command.cc; lepus/report/report.h): used by
// `lepus report`, `lepus fit --report` and `lepus demo`. Prints what was written (and what was
// left out) to `log`. Throws io::InputError for unreadable or foreign files.
void WriteHtmlReport(const std::string& results, const std::string& input,
                     const std::vector<std::string>& toys, const std::string& output, int top,
                     const std::string& svg_dir, const std::string& title, std::ostream& log);
// The projections a report draws, as (channel, kept axes): each multi-dimensional channel whose
// axes all have edges onto each axis and, when it has a charge axis ("charge" or "q", 2-3 bins),
// onto (axis, charge) in the channel's axis order. Used by `fit --report` and `demo`.
std::vector<std::pair<std::string, std::vector<std::string>>> ReportProjections(
    const engine::Model& model);

}  // namespace lepus::cli
