// Shared producer pieces (producer_common.h).
#include "producer_common.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <utility>

#include <hdf5.h>

#include "lepus/io/errors.h"
#include "lepus/models/wmass.h"

namespace lepus::models::detail {

CalibrationParameters CoarsenCalibration(const CalibrationParameters& fine, int regions) {
  const int n = fine.num_bins();
  if (regions <= 0 || n % regions != 0)
    throw std::invalid_argument("muon_scale.regions is " + std::to_string(regions) +
                                ", but must divide the calibration's " + std::to_string(n) +
                                " eta bins");
  const int per = n / regions;
  CalibrationParameters c;
  c.description = fine.description + " (coarse-grained into " + std::to_string(regions) +
                  " regions for the momentum-scale nuisances)";
  c.params.resize(regions);
  c.covariance = Eigen::MatrixXd::Zero(3 * regions, 3 * regions);
  const bool closure = !fine.closure.per_bin.empty();
  const bool resolution = !fine.resolution_uncertainty.empty();
  if (closure) c.closure.per_bin.resize(regions);
  c.closure.global = fine.closure.global;  // one coherent nuisance: unchanged by the regions
  if (resolution) c.resolution_uncertainty.assign(regions, 0.0);
  for (int r = 0; r < regions; ++r) {
    c.eta_edges.push_back(fine.eta_edges[r * per]);
    ScaleBias mean;
    for (int b = r * per; b < (r + 1) * per; ++b) {
      mean.A += fine.params[b].A / per;
      mean.e += fine.params[b].e / per;
      mean.M += fine.params[b].M / per;
      c.covariance.block(3 * r, 3 * r, 3, 3) += fine.covariance.block(3 * b, 3 * b, 3, 3) / per;
      if (closure) {
        c.closure.per_bin[r].A += fine.closure.per_bin[b].A / per;
        c.closure.per_bin[r].e += fine.closure.per_bin[b].e / per;
        c.closure.per_bin[r].M += fine.closure.per_bin[b].M / per;
      }
      if (resolution) c.resolution_uncertainty[r] += fine.resolution_uncertainty[b] / per;
    }
    c.params[r] = mean;
  }
  c.eta_edges.push_back(fine.eta_edges.back());
  return c;
}

WorkList::WorkList(const SampleSource& simulation, const GeneratorConfig& simulation_generator,
                   const SampleSource& data, const GeneratorConfig& data_generator,
                   std::uint64_t chunk, const GeneratorConfig* data_wplus_generator)
    : chunk_(chunk) {
  if (simulation.from_files()) {
    for (const auto& f : simulation.files) files_.push_back({f, SampleKind::kSimulation, nullptr});
  } else {
    sim_gen_ = std::make_unique<Generator>(simulation_generator);
    AddRanges(*sim_gen_, SampleKind::kSimulation);
  }
  if (data.from_files()) {
    for (const auto& f : data.files) files_.push_back({f, SampleKind::kData, nullptr});
  } else {
    data_gen_ = std::make_unique<Generator>(data_generator);
    if (data_wplus_generator) data_wplus_gen_ = std::make_unique<Generator>(*data_wplus_generator);
    AddRanges(*data_gen_, SampleKind::kData, data_wplus_gen_.get());
  }
  for (auto& f : files_) {
    f.reader = std::make_unique<EventFileReader>(f.path);
    // Simulation is weighted with efficiencies as weights, data are not: mixing them up would
    // silently give a wrong fit input.
    const SampleKind kind = f.reader->info().metadata.sample;
    if (kind != f.sample)
      throw io::InputError(f.path + ": the file holds " + ToString(kind) +
                           " events (attribute 'sample'), but was given as " + ToString(f.sample) +
                           " (" +
                           (f.sample == SampleKind::kData ? "--data-events / data.files"
                                                          : "--events / simulation.files") +
                           ")");
    total_ += f.reader->SizeHint();
  }
  for (const auto& r : ranges_) total_ += static_cast<std::int64_t>(r.count);
}

void WorkList::AddRanges(const Generator& g, SampleKind sample, const Generator* wplus) {
  for (Process p : g.config().processes) {
    const Generator* gp = wplus && p == Process::kWplusMuNu ? wplus : &g;
    const std::uint64_t n = gp->NumEvents(p);
    for (std::uint64_t first = 0; first < n; first += chunk_)
      ranges_.push_back(Range{gp, sample, p, first, std::min<std::uint64_t>(chunk_, n - first)});
  }
}

bool WorkList::Next(WorkItem* item, bool read) {
  if (next_range_ < ranges_.size()) {
    const Range& r = ranges_[next_range_++];
    item->sample = r.sample;
    item->generator = r.gen;
    item->process = r.process;
    item->first = r.first;
    item->count = r.count;
    item->progress_units = static_cast<std::int64_t>(r.count);
    return true;
  }
  while (next_file_ < files_.size()) {
    File& f = files_[next_file_];
    const std::int64_t before = f.reader->Position();
    std::size_t got;
    if (read) {
      got = f.reader->Next(&item->batch, chunk_);
    } else {
      item->batch.Clear();
      got = f.reader->Skip(chunk_);
    }
    if (got == 0) {
      ++next_file_;
      continue;
    }
    item->sample = f.sample;
    item->generator = nullptr;
    item->progress_units = f.reader->Position() - before;
    return true;
  }
  return false;
}

std::vector<std::string> WorkList::InputWarnings() const {
  std::vector<std::string> out;
  for (const auto& f : files_)
    if (std::string w = NegativeWeightWarning(*f.reader); !w.empty()) out.push_back(std::move(w));
  return out;
}

io::WriteOptions ResolveStorage(const engine::Model& model, const std::string& storage,
                                double sparse_density, bool gzip, double* density_out) {
  const double cells = static_cast<double>(model.nbins_full) * model.num_processes() *
                       std::max(1, model.num_systematics());
  const double density = cells > 0 ? model.tensor.num_entries() / cells : 0.0;
  if (density_out) *density_out = density;
  io::WriteOptions o;
  o.gzip = gzip;
  if (storage == "sparse" || (storage == "auto" && density < sparse_density))
    o.storage = engine::StorageKind::kSparse;
  else
    o.storage = engine::StorageKind::kDense;
  return o;
}

std::string PartialBytes(const WMassHistograms& h) {
  std::string out;
  AppendCommonBytes(h, &out);
  for (const auto& m : h.split) m.AppendBytes(&out);
  const std::int64_t n = static_cast<std::int64_t>(h.split_xsec.size());
  out.append(reinterpret_cast<const char*>(&n), sizeof(n));
  out.append(reinterpret_cast<const char*>(h.split_xsec.data()),
             h.split_xsec.size() * sizeof(double));
  // noi_var: the same size in every partial of a production (the fit channel's bins).
  out.append(reinterpret_cast<const char*>(h.noi_var.data()), h.noi_var.size() * sizeof(double));
  out.append(reinterpret_cast<const char*>(&h.nonprompt_sim_skipped),
             sizeof(h.nonprompt_sim_skipped));
  return out;
}

void ReadPartial(const std::string& bytes, WMassHistograms* h) {
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  p = ReadCommonBytes(p, end, h);
  for (auto& m : h->split) p = m.ReadBytes(p, end);
  std::int64_t n = 0;
  if (end - p < static_cast<std::ptrdiff_t>(sizeof(n)))
    throw std::runtime_error("partial histograms: too few bytes");
  std::memcpy(&n, p, sizeof(n));
  p += sizeof(n);
  const std::size_t noi_bytes = h->noi_var.size() * sizeof(double);
  const std::size_t rest =
      static_cast<std::size_t>(n) * sizeof(double) + noi_bytes + sizeof(h->nonprompt_sim_skipped);
  if (n < 0 || static_cast<std::size_t>(end - p) != rest)
    throw std::runtime_error("partial histograms: " + std::to_string(end - p) + " bytes left, " +
                             std::to_string(rest) + " expected");
  h->split_xsec.resize(static_cast<std::size_t>(n));
  std::memcpy(h->split_xsec.data(), p, static_cast<std::size_t>(n) * sizeof(double));
  p += n * sizeof(double);
  std::memcpy(h->noi_var.data(), p, noi_bytes);
  std::memcpy(&h->nonprompt_sim_skipped, p + noi_bytes, sizeof(h->nonprompt_sim_skipped));
}

std::string PartialBytes(const DileptonHistograms& h) {
  std::string out;
  AppendCommonBytes(h, &out);
  out.append(reinterpret_cast<const char*>(&h.other_sim_skipped), sizeof(h.other_sim_skipped));
  return out;
}

void ReadPartial(const std::string& bytes, DileptonHistograms* h) {
  const char* p = bytes.data();
  const char* end = p + bytes.size();
  p = ReadCommonBytes(p, end, h);
  if (static_cast<std::size_t>(end - p) != sizeof(h->other_sim_skipped))
    throw std::runtime_error("partial histograms: " + std::to_string(end - p) + " bytes left, " +
                             std::to_string(sizeof(h->other_sim_skipped)) + " expected");
  std::memcpy(&h->other_sim_skipped, p, sizeof(h->other_sim_skipped));
}

}  // namespace lepus::models::detail

namespace lepus::models {

void WriteProducerMetadata(const std::string& path, const std::string& json) {
  // HDF5's own error stack printing is switched off for these calls: the failure is reported as
  // an exception naming the file.
  H5E_auto2_t old_func = nullptr;
  void* old_data = nullptr;
  H5Eget_auto2(H5E_DEFAULT, &old_func, &old_data);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  bool ok = file >= 0;
  if (ok) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    ok = type >= 0 && H5Tset_size(type, H5T_VARIABLE) >= 0 && H5Tset_cset(type, H5T_CSET_UTF8) >= 0;
    const hid_t space = H5Screate(H5S_SCALAR);
    hid_t attr = -1;
    if (ok && space >= 0) {
      if (H5Aexists(file, kProducerMetadataAttribute) > 0)
        H5Adelete(file, kProducerMetadataAttribute);
      attr = H5Acreate2(file, kProducerMetadataAttribute, type, space, H5P_DEFAULT, H5P_DEFAULT);
    }
    const char* text = json.c_str();
    ok = ok && attr >= 0 && H5Awrite(attr, type, &text) >= 0;
    if (attr >= 0) ok = H5Aclose(attr) >= 0 && ok;
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    ok = H5Fclose(file) >= 0 && ok;
  }
  H5Eset_auto2(H5E_DEFAULT, old_func, old_data);
  if (!ok)
    throw io::InputError(path + ": cannot add the producer metadata (attribute " +
                         kProducerMetadataAttribute + ")");
}

}  // namespace lepus::models
