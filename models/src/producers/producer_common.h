// Private: pieces shared by the producers (wmass.cc, dilepton.cc): the coarse-graining of a
// calibration into eta regions, the ordered list of work items over generated and file
// samples, the parallel ordered fill over it, and the storage choice of the fit input.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "lepus/engine/model.h"
#include "lepus/io/writer.h"
#include "lepus/models/calibration.h"
#include "lepus/models/dilepton.h"
#include "lepus/models/event_file.h"
#include "lepus/models/events.h"
#include "lepus/models/generator.h"
#include "lepus/models/histogram.h"
#include "lepus/models/wmass.h"

namespace lepus::models::detail {

// A coarse-grained calibration: `regions` equal groups of bins with coherent shifts. The
// covariance of a region is the mean of its bins' 3x3 blocks (a shift of each bin's size applied
// to the whole region), the central values, closure triples and resolution uncertainties the
// means of the bins'; the global closure term is kept as it is. Throws std::invalid_argument ("muon_scale.regions is ...") when regions
// does not divide the calibration's bins.
CalibrationParameters CoarsenCalibration(const CalibrationParameters& fine, int regions);

// A work item: an event-number range of one generated process, or a batch read from a file.
struct WorkItem {
  SampleKind sample = SampleKind::kSimulation;
  const Generator* generator = nullptr;  // null: `batch` already holds the events
  Process process = Process::kWplusMuNu;
  std::uint64_t first = 0, count = 0;
  std::int64_t progress_units = 0;
  EventBatch batch;
};

// Serial producer of work items over the two samples, in a fixed order: the generated ranges
// (simulation, then data; within a generator the processes in configuration order, each in
// chunks of `chunk` events), then the files in order (simulation, then data), read `chunk`
// events at a time. Items are fixed by the input, never by the thread count. The constructor
// opens every file (a missing or malformed one fails before any work) and rejects a file whose
// `sample` attribute does not match its role (io::InputError naming the file and the flag).
class WorkList {
 public:
  // The generator configurations are used only for the samples that are not read from files.
  // data_wplus_generator (optional): the generated data's W+ -> mu nu events come from this
  // generator instead (a charge-dependent W mass in the data truth); same seed, so the event
  // counts and random streams are those of the main data generator.
  WorkList(const SampleSource& simulation, const GeneratorConfig& simulation_generator,
           const SampleSource& data, const GeneratorConfig& data_generator, std::uint64_t chunk,
           const GeneratorConfig* data_wplus_generator = nullptr);
  std::int64_t total() const { return total_; }
  // Fills the next item; false at the end. read = false (an item of another MPI rank): a file
  // item is skipped (EventFileReader::Skip: only the columns of the whole-file checks are read)
  // and its batch left empty; its progress_units are still set.
  bool Next(WorkItem* item, bool read = true);
  // After the last item: NegativeWeightWarning of every file that has one.
  std::vector<std::string> InputWarnings() const;

 private:
  struct Range {
    const Generator* gen;
    SampleKind sample;
    Process process;
    std::uint64_t first, count;
  };
  struct File {
    std::string path;
    SampleKind sample;
    std::unique_ptr<EventFileReader> reader;
  };
  void AddRanges(const Generator& g, SampleKind sample, const Generator* wplus = nullptr);

  std::uint64_t chunk_;
  std::unique_ptr<Generator> sim_gen_, data_gen_, data_wplus_gen_;
  std::vector<Range> ranges_;
  std::size_t next_range_ = 0;
  std::vector<File> files_;
  std::size_t next_file_ = 0;
  std::int64_t total_ = 0;
};

// The ordered parallel fill of a producer over a work list (histogram.h,
// OrderedParallelReduce): 2 threads + 1 slots, each with a work item, a partial histogram set
// (make()) and a scratch object; fill(batch, sample, &partial, &scratch) runs in parallel and
// the partials are added in a fixed order (items into their group's sum in item order, the
// group sums into the total in group order; ProduceOptions::items_per_group), so the result is
// bitwise identical at any thread count and any number of MPI ranks. Hist needs Reset(), operator+= and the counters sim_events / data_events
// (events generated but rejected by the generator's filter are counted as read).
// The bytes of a partial (ProduceOptions::send_partial): every summed member, in a fixed order.
template <typename Hist>
void AppendCommonBytes(const Hist& h, std::string* out) {
  for (const auto& m : h.mc) m.AppendBytes(out);
  h.data.AppendBytes(out);
  h.variations.AppendBytes(out);
  const std::int64_t counts[3] = {h.sim_events, h.data_events, h.data_selected};
  out->append(reinterpret_cast<const char*>(counts), sizeof(counts));
  out->append(reinterpret_cast<const char*>(h.selected.data()),
              h.selected.size() * sizeof(h.selected[0]));
}
template <typename Hist>
const char* ReadCommonBytes(const char* p, const char* end, Hist* h) {
  for (auto& m : h->mc) p = m.ReadBytes(p, end);
  p = h->data.ReadBytes(p, end);
  p = h->variations.ReadBytes(p, end);
  std::int64_t counts[3];
  const std::size_t n = sizeof(counts) + h->selected.size() * sizeof(h->selected[0]);
  if (static_cast<std::size_t>(end - p) < n)
    throw std::runtime_error("partial histograms: too few bytes");
  std::memcpy(counts, p, sizeof(counts));
  std::memcpy(h->selected.data(), p + sizeof(counts), n - sizeof(counts));
  h->sim_events = counts[0];
  h->data_events = counts[1];
  h->data_selected = counts[2];
  return p + n;
}
std::string PartialBytes(const WMassHistograms& h);
void ReadPartial(const std::string& bytes, WMassHistograms* h);
std::string PartialBytes(const DileptonHistograms& h);
void ReadPartial(const std::string& bytes, DileptonHistograms* h);

template <typename Hist, typename Scratch, typename Make, typename FillFn>
Hist OrderedFill(WorkList& work, const ProduceOptions& options, Make make, FillFn fill) {
  const int threads = ResolveThreads(options.num_threads);
  const int slots = 2 * threads + 1;
  std::vector<WorkItem> items(slots);
  std::vector<Hist> partials;
  std::vector<Scratch> scratch(slots);
  for (int s = 0; s < slots; ++s) partials.push_back(make());
  Hist total = make();
  ProduceProgress progress;
  progress.events_total = work.total();
  const auto start = std::chrono::steady_clock::now();
  auto report = [&] {
    if (!options.progress) return;
    progress.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    options.progress(progress);
  };
  // The sum has a fixed two-level shape (ProduceOptions::items_per_group): the items of a group
  // (G consecutive items) are added in item order into the group's sum, and the group sums into
  // the total in group order. Group g belongs to rank g % ranks, which fills its items and sends
  // the group's sum (ranks other than 0) or keeps it (rank 0). Rank 0 receives a group of another
  // rank only when it has finished its own next group (or at the end), so a rank that runs ahead
  // does not wait for it; the additions into the total are the same in every case, so the
  // result is bitwise identical for any number of ranks and threads.
  const std::int64_t group_size = std::max(options.items_per_group, 1);
  const int ranks = std::max(options.ranks, 1);
  const bool root = options.rank == 0;
  auto owner_of = [&](std::int64_t item) { return static_cast<int>((item / group_size) % ranks); };
  std::vector<std::int64_t> index(slots, 0);
  std::int64_t next_index = 0;
  Hist group = make();
  Hist received = ranks > 1 && root ? make() : Hist{};
  std::int64_t group_units = 0;  // rank 0: progress units of the current group of another rank
  struct Pending {
    int owner;
    std::int64_t units;
  };
  std::vector<Pending> pending;  // rank 0: other ranks' closed groups not yet received
  auto receive_pending = [&] {
    for (const Pending& p : pending) {
      ReadPartial(options.receive_partial(p.owner), &received);
      total += received;
      progress.events_done += p.units;
      report();
    }
    pending.clear();
  };
  // Closes the group of `item` (its last item, or the last item of the list).
  auto close_group = [&](std::int64_t item) {
    const int owner = owner_of(item);
    const std::int64_t units = group_units;
    group_units = 0;
    if (!root) {
      if (owner == options.rank) options.send_partial(PartialBytes(group));
      group.Reset();
      return;
    }
    if (owner != 0) {
      pending.push_back({owner, units});
      return;
    }
    receive_pending();
    total += group;
    group.Reset();
  };
  OrderedParallelReduce(
      threads, slots,
      [&](int s) {
        // Items of other ranks are walked but not read (event files: only the columns the
        // whole-file checks need; WorkList::Next).
        if (!work.Next(&items[s], owner_of(next_index) == options.rank)) return false;
        index[s] = next_index++;
        return true;
      },
      [&](int s) {
        if (owner_of(index[s]) != options.rank) return;
        WorkItem& it = items[s];
        if (it.generator) {
          it.batch.Clear();
          it.generator->Generate(it.process, it.first, it.count, &it.batch);
        }
        fill(it.batch, it.sample, &partials[s], &scratch[s]);
        if (it.generator) {
          const std::int64_t extra =
              static_cast<std::int64_t>(it.count) - static_cast<std::int64_t>(it.batch.size());
          if (it.sample == SampleKind::kData)
            partials[s].data_events += extra;
          else
            partials[s].sim_events += extra;
        }
      },
      [&](int s) {
        const std::int64_t i = index[s];
        if (owner_of(i) == options.rank) {
          group += partials[s];
          partials[s].Reset();
          if (root) {
            progress.events_done += items[s].progress_units;
            report();
          }
        } else {
          group_units += items[s].progress_units;
        }
        if ((i + 1) % group_size == 0) close_group(i);
      });
  if (next_index % group_size != 0) close_group(next_index - 1);  // the last, shorter group
  if (root) {
    receive_pending();
    report();
  }
  return total;
}

// Write options for a built model: gzip as given; storage "sparse", "dense", or "auto" (sparse
// when the logk density, non-zero entries / (bins x processes x systematics), is below
// sparse_density). *density_out receives the density.
io::WriteOptions ResolveStorage(const engine::Model& model, const std::string& storage,
                                double sparse_density, bool gzip, double* density_out = nullptr);

// The whole chain of a producer: Fill, MakeFitInput, Build, the storage choice, and the summary's
// timings, nuisance count and groups. Production has model / write_options / summary; Producer
// the Fill / MakeFitInput / ResolveWriteOptions of the producers.
template <typename Production, typename Producer, typename Config>
Production ProduceChain(const Config& config, const ProduceOptions& options) {
  Producer producer(config);
  const auto t0 = std::chrono::steady_clock::now();
  auto h = producer.Fill(options);
  const double fill = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  Production out;
  if (options.ranks > 1 && options.rank != 0) return out;  // rank 0 builds and writes
  io::TensorWriter writer = producer.MakeFitInput(h, &out.summary);
  const auto t1 = std::chrono::steady_clock::now();
  out.model = writer.Build();
  out.summary.seconds_build +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  out.summary.seconds_fill = fill;
  out.write_options = producer.ResolveWriteOptions(out.model, &out.summary.density);
  out.summary.storage = out.write_options.storage;
  out.summary.nuisances = out.model.num_systematics();
  for (const auto& g : out.model.groups)
    out.summary.groups.emplace_back(g.name, static_cast<int>(g.members.size()));
  return out;
}

// The input of TheoryVariations::Prepare for the selected candidates of a batch: copies the
// generator-level boson columns (process, v_mass, v_pt, v_y, v_phi, v_charge, cos_theta_cs,
// phi_cs) of events event_of(0 .. m-1) of b into sub (resized to m).
template <typename EventOf>
void GatherBosonColumns(const EventBatch& b, std::size_t m, EventOf event_of, EventBatch* sub) {
  sub->Resize(m);
  for (std::size_t j = 0; j < m; ++j) {
    const std::size_t i = event_of(j);
    sub->process[j] = b.process[i];
    sub->v_mass[j] = b.v_mass[i];
    sub->v_pt[j] = b.v_pt[i];
    sub->v_y[j] = b.v_y[i];
    sub->v_phi[j] = b.v_phi[i];
    sub->v_charge[j] = b.v_charge[i];
    sub->cos_theta_cs[j] = b.cos_theta_cs[i];
    sub->phi_cs[j] = b.phi_cs[i];
  }
}

}  // namespace lepus::models::detail
