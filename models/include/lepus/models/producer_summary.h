// What every producer's summary reports (`lepus produce ...` prints it on stderr): the events
// read and selected, and the fit input written. WMassSummary and DileptonSummary add their own
// lines (the selection, the non-prompt estimate, the attenuation, ...).
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "lepus/engine/model.h"

namespace lepus::models {

struct ProducerSummary {
  std::int64_t sim_events = 0, data_events = 0;
  // Per process, in the fit channel: raw selected events and yields.
  std::vector<std::string> processes;
  std::vector<std::int64_t> selected;
  std::vector<double> yields;
  std::int64_t data_selected = 0;
  double data_yield = 0.0;
  int bins = 0;
  int nuisances = 0;
  std::vector<std::pair<std::string, int>> groups;  // group -> nuisances
  int variations_filled = 0;                        // variation histograms filled in the event loop
  int pseudodata_sets = 0;
  double density = 0.0;  // non-zero logk entries / (bins x processes x systematics)
  engine::StorageKind storage = engine::StorageKind::kDense;
  long long clipped_entries = 0;
  double seconds_fill = 0.0, seconds_build = 0.0;
  // Things the user should know (e.g. the non-prompt smoothing fell back to the raw estimate).
  std::vector<std::string> warnings;

 protected:
  // "events read: N simulation, M data".
  void ReportEventsRead(std::ostream& os) const;
  // The selected data line, then "fit input: B bins, P processes, ...", the groups and the
  // tensor density.
  void ReportFitInput(std::ostream& os, int processes_written) const;
};

}  // namespace lepus::models
