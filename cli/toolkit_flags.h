// The flags of `lepus fit`'s inference toolkit that name parameters: --group NAME=REGEX and
// --combine NAME=EXPR, and the number parser they share.
#pragma once

#include <string>
#include <vector>

#include "lepus/engine/combination.h"
#include "lepus/engine/fit.h"
#include "lepus/engine/impacts.h"
#include "lepus/engine/likelihood.h"
#include "lepus/engine/model.h"

namespace lepus::cli {

// Parses a whole string as a finite number; throws std::invalid_argument
// "<what> is '<text>', but must be a finite number".
double ParseNumber(const std::string& text, const std::string& what);

// `--group NAME=REGEX` items: groups of the systematics whose whole name matches REGEX
// (ECMAScript). Throws std::invalid_argument for a malformed item, an empty name or pattern, an
// invalid regex, a pattern matching no systematic, or a name that is already a group of the model,
// given twice, or one of the reserved rows ("stat", "binByBinStat", "Total").
std::vector<engine::SystematicGroup> ParseGroupFlags(const engine::Model& model,
                                                     const std::vector<std::string>& items);

// `--combine NAME=EXPR` items (engine::ParseCombination). Throws std::invalid_argument for a
// malformed item, an unknown parameter or bad syntax (naming the flag and NAME), and a NAME that
// is given twice or is already a parameter name.
std::vector<engine::LinearCombination> ParseCombineFlags(const engine::Likelihood& likelihood,
                                                         const std::vector<std::string>& items);

}  // namespace lepus::cli
