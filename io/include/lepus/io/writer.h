// Writers of fit inputs.
//  * WriteFitInput: any engine::Model -> HDF5 in the tensor layout (dense or sparse), with
//    the lepus metadata as the `meta_json` root attribute. Atomic: written to a temporary file
//    in the same directory and renamed, so a failure leaves no half-written output.
//  * TensorWriter: the builder used by tests, examples and the producers: channels with named
//    axes, data, processes with sumw/sumw2, norm and shape systematics with the symmetrisation
//    choices of docs/likelihood.md section 2, groups, nuisances of interest with a
//    physical scale. Build() gives the Model in memory (no file needed); Write() writes it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "lepus/engine/model.h"
#include "lepus/io/errors.h"

namespace lepus::io {

struct WriteOptions {
  engine::StorageKind storage = engine::StorageKind::kDense;
  bool gzip = false;   // deflate level 4 on the large datasets
  int gzip_level = 4;  // 1..9
};

// Throws InputError if the model is invalid or the file cannot be written.
void WriteFitInput(const engine::Model& model, const std::string& path,
                   const WriteOptions& options = {});

// How an asymmetric (up, down) variation is turned into logk.
enum class Symmetrization {
  kNone,          // asymmetric: logkavg + logkhalfdiff planes
  kAverage,       // keep logkavg only
  kConservative,  // logkup or logkdown, whichever is larger in magnitude, with its own sign (rabbit)
  kLinear,        // two symmetric nuisances NameSymAvg (avg) and NameSymDiff (halfdiff)
  kQuadratic,     // as kLinear with the diff scaled by sqrt(3)
};
std::string ToString(Symmetrization s);
Symmetrization SymmetrizationFromString(const std::string& text);  // throws std::invalid_argument

class TensorWriter {
 public:
  explicit TensorWriter(engine::SystematicType type = engine::SystematicType::kLogNormal);

  // Channels: bins unrolled row-major over the axes. Masked channels are placed after all
  // unmasked ones in the tensor regardless of the order of the calls.
  void AddChannel(const std::string& name, const std::vector<engine::Axis>& axes,
                  bool masked = false);
  // A channel with integer bins.
  void AddChannel(const std::string& name, int nbins, bool masked = false);

  // Processes: signals get a signal strength each and are ordered first.
  void AddProcess(const std::string& name, bool signal);

  // Observed counts of an unmasked channel ([nbins of the channel]).
  void SetData(const std::string& channel, const std::vector<double>& values);
  void AddPseudoData(const std::string& name, const std::string& channel,
                     const std::vector<double>& values);

  // Nominal template of a process in a channel: sum of weights and of squared weights
  // (sumw2 empty = no MC statistical uncertainty).
  void SetNominal(const std::string& channel, const std::string& process,
                  const std::vector<double>& sumw, const std::vector<double>& sumw2 = {});

  // Declares a systematic (implicitly done by the Add* calls with defaults: Gaussian, width 1).
  // prior_width <= 0 means unconstrained (cw = 0); otherwise cw = 1/prior_width^2.
  // noi: nuisance of interest; scale/unit: physical value of theta = 1 (e.g. 100, "MeV").
  void DeclareSystematic(const std::string& name, double prior_width = 1.0, bool noi = false,
                         double scale = 0.0, const std::string& unit = "");

  // Normalisation systematic: yield x kappa_up at theta = +1 and x kappa_down at theta = -1
  // (kappa_down <= 0: symmetric, 1/kappa_up). For kNormal models, kappa - 1 times the nominal.
  void AddNormSystematic(const std::string& name, const std::string& process,
                         const std::string& channel, double kappa_up, double kappa_down = 0.0,
                         Symmetrization sym = Symmetrization::kNone);

  // Shape systematic from up/down templates (sumw of the varied process in the channel).
  // down empty = symmetric (mirror of up). Non-positive up/nom or down/nom under log-normal:
  // logk set to ln(1e-3) (rabbit's convention), counted in clipped_entries().
  void AddShapeSystematic(const std::string& name, const std::string& process,
                          const std::string& channel, const std::vector<double>& up,
                          const std::vector<double>& down = {},
                          Symmetrization sym = Symmetrization::kNone);

  // Group membership (a systematic may be in several groups).
  void AddToGroup(const std::string& group, const std::string& systematic);

  // The model in memory. Throws InputError on inconsistent input (unknown channel/process,
  // template length mismatch, missing data for an unmasked channel, NaN/Inf, ...).
  engine::Model Build() const;
  void Write(const std::string& path, const WriteOptions& options = {}) const;

  long long clipped_entries() const { return clipped_entries_; }

 private:
  struct ChannelInfo {
    std::string name;
    std::vector<engine::Axis> axes;
    int nbins = 0;
    bool masked = false;
    std::vector<double> data;
    bool has_data = false;
  };
  struct SystInfo {
    std::string name;
    double prior_width = 1.0;
    bool noi = false;
    double scale = 0.0;
    std::string unit;
  };
  struct Key {  // (channel, process, syst) -> per-bin (logkavg, logkhalfdiff)
    int channel, process, syst;
    bool operator<(const Key& o) const {
      if (channel != o.channel) return channel < o.channel;
      if (process != o.process) return process < o.process;
      return syst < o.syst;
    }
  };
  int ChannelIndex(const std::string& name) const;
  int ProcessIndex(const std::string& name) const;
  int SystIndex(const std::string& name);  // declares with defaults if new
  void AddLogk(int syst, int process, int channel, const std::vector<double>& avg,
               const std::vector<double>& halfdiff);
  // (logkup, logkdown) per bin -> logk entries of the chosen symmetrisation.
  void AddVariation(const std::string& name, int process, int channel,
                    const std::vector<double>& logkup, const std::vector<double>& logkdown,
                    bool symmetric, Symmetrization sym);

  engine::SystematicType type_;
  std::vector<ChannelInfo> channels_;
  std::vector<std::pair<std::string, bool>> processes_;
  std::map<std::pair<int, int>, std::pair<std::vector<double>, std::vector<double>>> nominal_;
  std::vector<SystInfo> systs_;
  std::map<Key, std::pair<std::vector<double>, std::vector<double>>> logk_;
  std::vector<std::pair<std::string, std::vector<std::string>>> groups_;
  std::vector<std::pair<std::string, std::map<int, std::vector<double>>>> pseudodata_;
  long long clipped_entries_ = 0;
};

}  // namespace lepus::io
