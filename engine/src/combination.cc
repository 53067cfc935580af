#include "lepus/engine/combination.h"

#include <cctype>
#include <cmath>
#include <map>
#include <regex>
#include <stdexcept>

namespace lepus::engine {

namespace {

// A linear form: constant + sum coeff * param.
struct Lin {
  double c = 0.0;
  std::map<int, double> t;
  bool IsConstant() const { return t.empty(); }
};

Lin Add(Lin a, const Lin& b, double sign) {
  a.c += sign * b.c;
  for (const auto& [k, v] : b.t) a.t[k] += sign * v;
  return a;
}

Lin Scale(Lin a, double f) {
  a.c *= f;
  for (auto& kv : a.t) kv.second *= f;
  return a;
}

// Recursive-descent parser: expr = term {(+|-) term}; term = factor {(*|/) factor};
// factor = [+|-] (number | name | '(' expr ')').
class Parser {
 public:
  Parser(const Likelihood& lik, const std::string& s) : lik_(lik), s_(s) {}
  Lin Parse() {
    Lin v = Expr();
    Skip();
    if (pos_ != s_.size()) Fail("unexpected '" + std::string(1, s_[pos_]) + "'");
    return v;
  }

 private:
  [[noreturn]] void Fail(const std::string& what) const {
    throw std::invalid_argument("combination \"" + s_ + "\": " + what + " at position " +
                                std::to_string(pos_));
  }
  void Skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  Lin Expr() {
    Lin v = Term();
    for (;;) {
      Skip();
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) {
        const double sign = s_[pos_++] == '+' ? 1.0 : -1.0;
        v = Add(v, Term(), sign);
      } else {
        return v;
      }
    }
  }
  Lin Term() {
    Lin v = Factor();
    for (;;) {
      Skip();
      if (pos_ < s_.size() && (s_[pos_] == '*' || s_[pos_] == '/')) {
        const char op = s_[pos_++];
        Lin w = Factor();
        if (op == '*') {
          if (v.IsConstant())
            v = Scale(w, v.c);
          else if (w.IsConstant())
            v = Scale(v, w.c);
          else
            Fail("product of two parameters is not linear");
        } else {
          if (!w.IsConstant()) Fail("division by a parameter is not linear");
          if (w.c == 0.0) Fail("division by zero");
          v = Scale(v, 1.0 / w.c);
        }
      } else {
        return v;
      }
    }
  }
  Lin Factor() {
    Skip();
    if (pos_ >= s_.size()) Fail("unexpected end of expression");
    const char ch = s_[pos_];
    if (ch == '+' || ch == '-') {
      ++pos_;
      return Scale(Factor(), ch == '-' ? -1.0 : 1.0);
    }
    if (ch == '(') {
      ++pos_;
      Lin v = Expr();
      Skip();
      if (pos_ >= s_.size() || s_[pos_] != ')') Fail("missing ')'");
      ++pos_;
      return v;
    }
    if (std::isdigit(static_cast<unsigned char>(ch)) || ch == '.') {
      std::size_t used = 0;
      double val = 0;
      try {
        val = std::stod(s_.substr(pos_), &used);
      } catch (const std::exception&) {
        Fail("bad number");
      }
      pos_ += used;
      Lin v;
      v.c = val;
      return v;
    }
    std::string name;
    if (ch == '\'') {
      const std::size_t end = s_.find('\'', pos_ + 1);
      if (end == std::string::npos) Fail("unterminated quoted name");
      name = s_.substr(pos_ + 1, end - pos_ - 1);
      pos_ = end + 1;
    } else if (std::isalpha(static_cast<unsigned char>(ch)) || ch == '_') {
      const std::size_t start = pos_;
      while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) ||
                                  s_[pos_] == '_' || s_[pos_] == '.' || s_[pos_] == ':'))
        ++pos_;
      name = s_.substr(start, pos_ - start);
    } else {
      Fail("unexpected '" + std::string(1, ch) + "'");
    }
    const int idx = lik_.FindParam(name);
    if (idx < 0)
      throw std::invalid_argument("combination \"" + s_ + "\": unknown parameter \"" + name + "\"");
    Lin v;
    v.t[idx] = 1.0;
    return v;
  }

  const Likelihood& lik_;
  const std::string& s_;
  std::size_t pos_ = 0;
};

}  // namespace

LinearCombination ParseCombination(const Likelihood& lik, const std::string& name,
                                   const std::string& expression) {
  if (name.empty())
    throw std::invalid_argument("combination \"" + expression + "\" has an empty name");
  Lin v = Parser(lik, expression).Parse();
  LinearCombination out;
  out.name = name;
  out.expression = expression;
  out.constant = v.c;
  for (const auto& [k, c] : v.t)
    if (c != 0.0) out.terms.emplace_back(k, c);
  if (out.terms.empty())
    throw std::invalid_argument("combination \"" + expression +
                                "\" does not depend on any parameter");
  return out;
}

CombinationResult EvaluateCombination(const Likelihood& lik, const FitResult& r,
                                      const LinearCombination& comb) {
  const int n = lik.num_params();
  if (r.values.size() != n)
    throw std::invalid_argument("fit result does not belong to this likelihood");
  if (r.covariance.rows() != n || r.covariance.cols() != n)
    throw std::invalid_argument(
        "combination " + comb.name +
        " needs the full covariance, but the fit result has none "
        "(CovarianceExtent::kSelected or matrix-free): fit with CovarianceExtent::kFull");
  Eigen::VectorXd c = Eigen::VectorXd::Zero(n);
  for (const auto& [k, v] : comb.terms) {
    if (k < 0 || k >= n)
      throw std::invalid_argument("combination " + comb.name + ": parameter index out of range");
    c[k] += v;
  }
  CombinationResult out;
  out.name = comb.name;
  out.expression = comb.expression;
  out.value = c.dot(r.values) + comb.constant;
  const Eigen::VectorXd cc = r.covariance * c;
  out.error = std::sqrt(std::max(c.dot(cc), 0.0));
  for (int i = 0; i < n; ++i) {
    if (lik.params()[i].kind == ParamKind::kNuisance) continue;
    const double d = out.error * std::sqrt(r.covariance(i, i));
    out.correlations.emplace_back(i, d > 0 ? cc[i] / d : 0.0);
  }
  return out;
}

int ScalePriorWidths(Model* model, const std::string& pattern, double factor) {
  if (!(factor > 0) || !std::isfinite(factor))
    throw std::invalid_argument("prior scale factor for \"" + pattern + "\" is " +
                                std::to_string(factor) + ", but must be finite and > 0");
  std::regex re;
  try {
    re = std::regex(pattern);
  } catch (const std::regex_error& e) {
    throw std::invalid_argument("prior scale pattern \"" + pattern +
                                "\" is not a valid regular expression: " + e.what());
  }
  int matched = 0;
  for (int s = 0; s < model->num_systematics(); ++s) {
    if (!std::regex_match(model->systematics[s], re)) continue;
    ++matched;
    model->constraint_weights[s] /= factor * factor;
  }
  if (matched == 0)
    throw std::invalid_argument("prior scale pattern \"" + pattern + "\" matches no systematic");
  return matched;
}

}  // namespace lepus::engine
