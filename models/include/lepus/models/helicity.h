// The helicity cross-section fit (docs/helicity.md): a mode of the W-mass producer
// (wmass.h) in which the signal W -> mu nu is split by generator-level boson charge, pT bin, |y|
// bin and helicity component (UL, A0..A4), each split process filled with the event weight times
// its helicity template weight (HelicityWeights of theory_variations.h: they sum to 1, so the
// split processes add up to the unsplit signal exactly). Each split process gets a normalisation
// parameter (a signal strength, or a nuisance with a Gaussian prior of configurable width), a
// masked channel "helicity_xsec" carries the generator-level cross sections sigma_c of every
// split process (pb), and HelicityCoefficients turns a fit into sigma_c and A_i = sigma_i /
// sigma_UL with uncertainties.
//
// Conventions:
//   * sigma_UL of a (charge, pT, |y|) cell is its generator-level cross section (every simulated
//     signal event of the cell, no selection); sigma_i = sum over the cell's events of w A_i(event)
//     = sigma_UL <A_i>_cell (the analytic coefficients of the simulation, the same as in the
//     template weights). Scaling a split process by k scales sigma_i by k: A_i = sigma_i/sigma_UL.
//   * Split-process order: charge (minus, plus), pT bin, |y| bin, component (UL, A0..A4), the last
//     fastest; the masked channel has one bin per split process in the same order.
//   * The last pT and |y| bins are the overflows [last edge, inf).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "lepus/engine/fit.h"
#include "lepus/engine/likelihood.h"
#include "lepus/models/theory_variations.h"

namespace lepus::models {

// |y| edges of the reference's helicity fit; the last bin [3, inf) is the overflow.
inline const std::vector<double>& ReferenceHelicityYEdges() {
  static const std::vector<double> edges = {0, 0.4, 0.8, 1.2, 1.6, 2.0, 2.4, 3.0};
  return edges;
}

// A pseudo-data set of the helicity mode: the expectation with the split templates of component
// c scaled by scale[c] (0 = UL, i + 1 = A_i), in one boson-pT bin and |y| bin (-1 = all) and one
// charge (0 = both). Exactly representable by the model (the fit returns the scales).
struct HelicityPseudoData {
  std::string name;
  std::array<double, kNumHelicityComponents> scale = {1, 1, 1, 1, 1, 1};
  int pt_bin = -1;
  int y_bin = -1;
  int charge = 0;
};

struct HelicityConfig {
  bool enabled = false;  // false: the plain W-mass fit
  // Generator-level binning (GeV, |y|): increasing from 0, plus an overflow bin each.
  std::vector<double> pt_edges = ReferenceHelicityPtEdges();
  std::vector<double> y_edges = ReferenceHelicityYEdges();
  // Normalisation parameter of each split process: prior_width > 0 is the relative width of a
  // Gaussian prior (nuisance helicityNorm_<process>: yield x (1 + prior_width theta), as the
  // helicity mode's systematics are additive; group
  // "helicityNorm"); free: an unconstrained signal strength per split process (the POIs).
  bool free = false;
  double prior_width = 0.5;  // > 0 unless free
  // Data truth of generated data: A_i of the data generator multiplied by data_a_scale[i]
  // (GeneratorParams::a_scale; the closure test of docs/helicity.md).
  std::array<double, 8> data_a_scale = {1, 1, 1, 1, 1, 1, 1, 1};
  // Extra pseudo-data sets with modified A_i (HelicityPseudoData).
  std::vector<HelicityPseudoData> pseudodata;

  // The light mode: pT edges {0, 10, 30} and |y| {0, 1.2} (3 x 2 cells per charge, 72
  // processes); Reference(): the reference's edges (9 x 8 cells, 864 processes).
  static HelicityConfig Light();
  static HelicityConfig Reference();
  bool IsValid(std::string* error) const;
};

// The split of one configuration: indexing of cells and processes, names.
class HelicitySplit {
 public:
  explicit HelicitySplit(const HelicityConfig& config);
  int num_pt() const { return static_cast<int>(pt_edges_.size()); }  // incl. overflow
  int num_y() const { return static_cast<int>(y_edges_.size()); }
  int num_cells() const { return 2 * num_pt() * num_y(); }
  int num_processes() const { return num_cells() * kNumHelicityComponents; }
  // The cell of a generator-level boson (charge +-1, pT in GeV, rapidity); -1 for charge 0.
  int Cell(int charge, double pt, double y) const noexcept;
  int Process(int cell, int component) const noexcept {
    return cell * kNumHelicityComponents + component;
  }
  // (charge -1/+1, pT bin, |y| bin, component) of a process.
  int ChargeOf(int process) const noexcept { return process / (num_processes() / 2) ? 1 : -1; }
  int PtBinOf(int process) const noexcept {
    return (process / kNumHelicityComponents / num_y()) % num_pt();
  }
  int YBinOf(int process) const noexcept { return (process / kNumHelicityComponents) % num_y(); }
  int ComponentOf(int process) const noexcept { return process % kNumHelicityComponents; }
  // "Wmunu_plus_ptV3_yV1_A0".
  std::string ProcessName(int process) const;
  // "helicityNorm_Wmunu_plus_ptV3_yV1_A0".
  std::string NormName(int process) const;
  // Axes of the masked channel: charge, ptV, absYV, helicity (components 0..5).
  const std::vector<double>& pt_edges() const { return pt_edges_; }
  const std::vector<double>& y_edges() const { return y_edges_; }

 private:
  std::vector<double> pt_edges_, y_edges_;
};

// The masked channel of the generator-level cross sections.
inline constexpr const char* kHelicityXsecChannel = "helicity_xsec";

// Post-fit helicity cross sections and angular coefficients of one (charge, pT, |y|) cell.
struct HelicityCellResult {
  int charge = 0, pt_bin = 0, y_bin = 0;
  // sigma_c (pb) and its uncertainty, c = 0 (UL), i + 1 (A_i); prefit (the simulation's) values.
  std::array<double, kNumHelicityComponents> sigma{}, sigma_error{}, sigma_prefit{};
  // A_i = sigma_{i+1} / sigma_UL (index 0 unused = 1) with Gaussian error propagation from the
  // post-fit covariance of the masked channel, and the prefit A_i.
  std::array<double, kNumHelicityComponents> coeff{}, coeff_error{}, coeff_prefit{};
};

// sigma_c and A_i of every cell from a fit of a helicity-mode input (the masked channel
// helicity_xsec; its covariance J C J^T from engine::PostfitYields). Throws std::invalid_argument
// if the model has no such channel.
std::vector<HelicityCellResult> HelicityCoefficients(const engine::Likelihood& likelihood,
                                                     const engine::FitResult& result);
// The cells as a JSON array (for `lepus produce helicity --coefficients`) and a text table.
std::string HelicityCoefficientsJson(const std::vector<HelicityCellResult>& cells);
std::string HelicityCoefficientsTable(const std::vector<HelicityCellResult>& cells);

}  // namespace lepus::models
