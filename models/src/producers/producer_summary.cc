#include "lepus/models/producer_summary.h"

#include <cstdio>
#include <sstream>

namespace lepus::models {

void ProducerSummary::ReportEventsRead(std::ostream& os) const {
  char line[160];
  std::snprintf(line, sizeof(line), "events read: %lld simulation, %lld data\n",
                static_cast<long long>(sim_events), static_cast<long long>(data_events));
  os << line;
}

void ProducerSummary::ReportFitInput(std::ostream& os, int processes_written) const {
  char line[256];
  std::snprintf(line, sizeof(line), "  %-10s %12lld events\n", "data",
                static_cast<long long>(data_selected));
  os << line;
  std::snprintf(line, sizeof(line),
                "fit input: %d bins, %d processes, %d nuisances, %d pseudo-data sets, "
                "%d variation histograms filled\n",
                bins, processes_written, nuisances, pseudodata_sets, variations_filled);
  os << line;
  std::ostringstream g;
  for (const auto& [name, n] : groups) g << (g.tellp() > 0 ? ", " : " ") << name << " " << n;
  os << "groups:" << g.str() << "\n";
  std::snprintf(line, sizeof(line), "tensor density %.4f -> %s storage\n", density,
                storage == engine::StorageKind::kSparse ? "sparse" : "dense");
  os << line;
}

}  // namespace lepus::models
