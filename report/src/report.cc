// The HTML fit report (lepus/report/report.h, docs/report.md).
#include "lepus/report/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lepus/io/errors.h"
#include "lepus/io/output.h"
#include "lepus/io/reader.h"
#include "lepus/report/svg.h"

namespace lepus::report {

namespace {

using Json = nlohmann::json;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

bool Finite(double v) { return std::isfinite(v); }

std::string H(std::string_view s) { return Escape(s); }

std::string Fixed(double v, int decimals) {
  if (!Finite(v)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", std::clamp(decimals, 0, 10), v);
  return buf;
}

// "80.4 ± 1.2": the value rounded to two significant digits of the error.
std::string ValueError(double v, double e) {
  if (!Finite(v)) return "-";
  if (!Finite(e) || e <= 0) return FormatNumber(v, 5);
  const int decimals = std::max(0, 1 - static_cast<int>(std::floor(std::log10(e))));
  return Fixed(v, decimals) + " ± " + Fixed(e, decimals);
}

// Numbers for the embedded JSON: 4 significant digits, null for NaN.
Json Num(double v) {
  if (!Finite(v)) return nullptr;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return Json(std::strtod(buf, nullptr));
}

// JSON inside <script type="application/json">: '<' escaped so that no "</script>" can occur.
std::string ScriptJson(const Json& j) {
  std::string s = j.dump();
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '<')
      out += "\\u003c";
    else
      out += c;
  }
  return out;
}

// A file name for a plot (letters, digits, '-', '_', '.').
std::string FileName(const std::string& s) {
  std::string out;
  for (char c : s)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
  return out.empty() ? "plot" : out;
}

// Human axis titles with units for the axes the producers write.
std::string AxisTitle(const std::string& name) {
  static const std::map<std::string, std::string> known = {{"pt", "muon pT [GeV]"},
                                                           {"eta", "muon η"},
                                                           {"charge", "muon charge"},
                                                           {"ptV", "pT(V) [GeV]"},
                                                           {"absYV", "|y(V)|"},
                                                           {"mll", "m(ℓℓ) [GeV]"},
                                                           {"mass", "mass [GeV]"},
                                                           {"mt", "mT [GeV]"},
                                                           {"ptll", "pT(ℓℓ) [GeV]"},
                                                           {"yll", "y(ℓℓ)"},
                                                           {"helicity", "helicity component"}};
  const auto it = known.find(name);
  return it != known.end() ? it->second : name;
}

bool IsChargeAxis(const io::ResultsAxis& a) {
  std::string n = a.name;
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
  return (n == "charge" || n == "q" || n == "sign") && a.bins >= 2 && a.bins <= 3;
}

std::string ChargeLabel(const io::ResultsAxis& a, int i) {
  if (static_cast<int>(a.labels.size()) > i)
    return a.name + " " + a.labels[static_cast<std::size_t>(i)];
  if (static_cast<int>(a.edges.size()) > i + 1) {
    const double c = 0.5 * (a.edges[i] + a.edges[i + 1]);
    return c < 0 ? "negative charge" : c > 0 ? "positive charge" : "charge 0";
  }
  return a.name + " bin " + std::to_string(i);
}

std::string BinLabel(const io::ResultsAxis& a, int i) {
  if (static_cast<int>(a.labels.size()) > i) return a.labels[static_cast<std::size_t>(i)];
  if (static_cast<int>(a.edges.size()) > i + 1)
    return a.name + " [" + FormatNumber(a.edges[i], 3) + ", " + FormatNumber(a.edges[i + 1], 3) +
           ")";
  return a.name + " " + std::to_string(i);
}

// ---- Channels: bins, axes, projections -----------------------------------------------------------

struct ChannelData {
  const io::ResultsChannel* ch = nullptr;
  std::vector<io::ResultsAxis> axes;  // with edges filled from the fit input when missing
  std::vector<double> data;           // [nbins] or empty
  bool shaped = false;                // every axis has bins and their product is nbins
};

std::vector<int> Shape(const ChannelData& c) {
  std::vector<int> s;
  for (const auto& a : c.axes) s.push_back(a.bins);
  return s;
}

// Sum of per-bin values over the axes not in `keep` (row-major, first axis slowest).
std::vector<double> ProjectValues(const std::vector<double>& v, const std::vector<int>& shape,
                                  const std::vector<int>& keep) {
  std::size_t nout = 1;
  for (int k : keep) nout *= static_cast<std::size_t>(shape[k]);
  std::vector<double> out(nout, 0.0);
  std::vector<int> idx(shape.size(), 0);
  for (std::size_t b = 0; b < v.size(); ++b) {
    std::size_t o = 0;
    for (int k : keep)
      o = o * static_cast<std::size_t>(shape[k]) + static_cast<std::size_t>(idx[k]);
    if (Finite(v[b])) out[o] += v[b];
    for (int a = static_cast<int>(shape.size()) - 1; a >= 0; --a) {
      if (++idx[a] < shape[a]) break;
      idx[a] = 0;
    }
  }
  return out;
}

std::vector<double> Column(const io::ResultsMatrix& m, std::int64_t col) {
  std::vector<double> out(static_cast<std::size_t>(m.rows));
  for (std::int64_t r = 0; r < m.rows; ++r) out[static_cast<std::size_t>(r)] = m(r, col);
  return out;
}

// ---- Page assembly -----------------------------------------------------------------------------

const char* kCss = R"(
*{box-sizing:border-box}
body{font-family:"DejaVu Sans",Helvetica,Arial,sans-serif;margin:0;color:#111;background:#fafafa}
header{background:#1f2d3d;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px}
header .sub{font-size:13px;color:#c9d3dd;margin-top:4px;word-break:break-all}
nav{position:sticky;top:0;background:#fff;border-bottom:1px solid #ddd;padding:8px 24px;z-index:5;font-size:14px}
nav a{margin-right:16px;color:#0b5394;text-decoration:none}
nav a:hover{text-decoration:underline}
main{max-width:1440px;margin:0 auto;padding:8px 24px 40px}
section{background:#fff;border:1px solid #e2e2e2;border-radius:6px;padding:12px 18px;margin:18px 0}
h2{font-size:19px;margin:4px 0 10px;border-bottom:2px solid #0072B2;padding-bottom:4px}
h3{font-size:16px;margin:16px 0 6px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
th,td{border-bottom:1px solid #e4e4e4;padding:3px 10px;text-align:left;vertical-align:top}
th{background:#f1f4f7;position:sticky;top:0}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.kv th{background:none;font-weight:normal;color:#555;position:static}
.ok{color:#007a3d;font-weight:bold}.bad{color:#b00020;font-weight:bold}
.note{color:#555;font-size:13px}
.plot{max-width:100%;height:auto;display:block;margin:6px 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(620px,1fr));gap:8px}
.controls{margin:8px 0;font-size:14px}
.controls input{font-size:14px;padding:3px 6px;width:320px}
.controls select{font-size:14px}
.scroll{max-height:560px;overflow:auto;border:1px solid #e4e4e4}
.bar{display:inline-block;position:relative;width:110px;height:10px;background:#f0f0f0;vertical-align:middle}
.bar span{position:absolute;top:0;height:10px}
.bar:after{content:"";position:absolute;left:50%;top:-2px;height:14px;border-left:1px solid #888}
th.s{cursor:pointer}th.s:hover{background:#dde6ee}
details summary{cursor:pointer;font-size:14px;color:#0b5394;margin:6px 0}
)";

// Search, filter and sort of the parameter table (the data are in #pdata).
const char* kScript = R"(
(function(){
  var el=document.getElementById('pdata');
  if(!el)return;
  var D=JSON.parse(el.textContent);
  var q=document.getElementById('psearch'),tsel=document.getElementById('ptarget'),
      ksel=document.getElementById('pkind'),body=document.getElementById('pbody'),
      info=document.getElementById('pinfo');
  var key='imp',dir=-1,LIMIT=400;
  function esc(s){return String(s).replace(/[&<>"]/g,function(c){return{'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c];});}
  function f(v){return v===null||v===undefined?'-':(Math.abs(v)>=1e4||(Math.abs(v)<1e-3&&v!==0)?v.toExponential(2):(+v.toPrecision(3)).toString());}
  function bar(v,m,c){if(v===null||v===undefined||!(m>0))return '';var w=Math.min(50,Math.abs(v)/m*50),l=v<0?50-w:50;
    return '<span class="bar"><span style="left:'+l+'%;width:'+w+'%;background:'+c+'"></span></span>';}
  function render(){
    var t=tsel?+tsel.value:0,text=q.value.trim(),re=null;
    if(text){try{re=new RegExp(text,'i');}catch(e){re=null;}}
    var kind=ksel?ksel.value:'';
    var nom=D.nominal.length?D.nominal[t]:null,glo=D.global.length?D.global[t]:null;
    var rows=[];
    for(var i=0;i<D.names.length;i++){
      var n=D.names[i];
      if(text&&!(re?re.test(n):n.toLowerCase().indexOf(text.toLowerCase())>=0))continue;
      if(kind&&D.kind[i]!==kind)continue;
      rows.push(i);
    }
    function val(i){
      if(key==='name')return D.names[i];
      if(key==='pull')return D.pull[i]===null?-1:Math.abs(D.pull[i]);
      if(key==='constr')return D.constr[i]===null?-1:D.constr[i];
      if(key==='glob')return glo&&glo[i]!==null?Math.abs(glo[i]):-1;
      return nom&&nom[i]!==null?Math.abs(nom[i]):(D.pull[i]===null?-1:Math.abs(D.pull[i])/1e6);
    }
    rows.sort(function(a,b){var x=val(a),y=val(b);return (x<y?-1:x>y?1:0)*dir;});
    var mi=0,mp=2;
    rows.forEach(function(i){if(nom&&nom[i]!==null)mi=Math.max(mi,Math.abs(nom[i]));
      if(glo&&glo[i]!==null)mi=Math.max(mi,Math.abs(glo[i]));if(D.pull[i]!==null)mp=Math.max(mp,Math.abs(D.pull[i]));});
    var h=[];
    rows.slice(0,LIMIT).forEach(function(i){
      h.push('<tr><td>'+esc(D.names[i])+'</td><td>'+D.kind[i]+'</td><td class="n">'+f(D.value[i])+' ± '+f(D.error[i])+
        '</td><td class="n">'+f(D.pull[i])+'</td><td>'+bar(D.pull[i],mp,'#000')+'</td><td class="n">'+f(D.constr[i])+'</td>'+
        (nom?'<td class="n">'+f(nom[i])+'</td><td>'+bar(nom[i],mi,'#0072B2')+'</td>':'')+
        (glo?'<td class="n">'+f(glo[i])+'</td><td>'+bar(glo[i],mi,'#E69F00')+'</td>':'')+'</tr>');
    });
    body.innerHTML=h.join('');
    info.textContent=rows.length+' of '+D.names.length+' parameters match'+(rows.length>LIMIT?' (first '+LIMIT+' shown; refine the search)':'');
  }
  q.addEventListener('input',render);
  if(tsel)tsel.addEventListener('change',render);
  if(ksel)ksel.addEventListener('change',render);
  Array.prototype.forEach.call(document.querySelectorAll('#ptable th.s'),function(th){
    th.addEventListener('click',function(){var k=th.getAttribute('data-k');if(k===key)dir=-dir;else{key=k;dir=k==='name'?1:-1;}render();});
  });
  render();
})();
)";

class Builder {
 public:
  Builder(const ReportSources& s, const ReportOptions& o) : src_(s), r_(s.results), opt_(o) {
    try {
      if (!r_.summary_json.empty()) summary_ = Json::parse(r_.summary_json);
    } catch (const std::exception&) {
      report_.notes.push_back("the summary_json attribute is not valid JSON: timings not shown");
    }
    const std::vector<double>& d = !r_.data_fitted.empty() ? r_.data_fitted : src_.input_data;
    data_ = &d;
  }

  Report Build() {
    std::string body;
    body += Summary();
    body += Pois();
    body += Impacts();
    body += Distributions();
    body += Correlations();
    body += Scans();
    body += Toys();

    std::string title = opt_.title;
    if (title.empty())
      title = "lepus fit report" + (r_.input.empty() ? std::string() : ": " + Basename(r_.input));
    std::string nav;
    static const std::vector<std::pair<std::string, std::string>> names = {
        {"summary", "Summary"},
        {"pois", "POIs / NOIs"},
        {"impacts", "Pulls & impacts"},
        {"grouped", "Grouped impacts"},
        {"distributions", "Distributions"},
        {"correlations", "Correlations"},
        {"scans", "Scans"},
        {"toys", "Toys"}};
    for (const auto& [id, label] : names)
      if (std::find(report_.sections.begin(), report_.sections.end(), id) != report_.sections.end())
        nav += "<a href=\"#" + id + "\">" + label + "</a>";
    std::string html;
    html.reserve(body.size() + 16384);
    html +=
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        "<meta name=\"generator\" content=\"lepus " +
        H(r_.lepus_version) +
        "\">"
        "<title>" +
        H(title) + "</title><style>" + kCss + "</style></head><body>\n";
    html += "<header><h1>" + H(title) + "</h1><div class=\"sub\">" + H(r_.path) +
            (r_.input.empty() ? "" : " &middot; input " + H(r_.input)) + "</div></header>\n";
    html += "<nav>" + nav + "</nav>\n<main>\n" + body;
    if (!report_.notes.empty()) {
      html += "<section id=\"notes\"><h2>Not shown</h2><ul class=\"note\">";
      for (const auto& n : report_.notes) html += "<li>" + H(n) + "</li>";
      html += "</ul></section>\n";
    }
    html += "</main>\n<script>" + std::string(kScript) + "</script>\n</body></html>\n";
    report_.html = std::move(html);
    return std::move(report_);
  }

 private:
  static std::string Basename(const std::string& p) {
    return std::filesystem::path(p).filename().string();
  }

  // Adds the plot to the SVG list (for --svg-dir) and returns it for the page.
  std::string Plot(const std::string& name, std::string svg) {
    std::string file = FileName(name);
    for (int k = 2; used_files_.count(file); ++k) file = FileName(name) + "_" + std::to_string(k);
    used_files_.insert(file);
    report_.svgs.emplace_back(file + ".svg", svg);
    return svg + "\n";
  }

  void Section(const std::string& id) { report_.sections.push_back(id); }

  std::vector<int> Targets() const {
    std::vector<int> t;
    for (int i = 0; i < r_.num_params(); ++i)
      if (r_.kinds[i] == "poi" || r_.kinds[i] == "noi") t.push_back(i);
    return t;
  }

  double Pull(int j) const {
    if (!r_.constrained[j] || !(r_.prefit_errors[j] > 0)) return kNaN;
    return (r_.values[j] - r_.prefit[j]) / r_.prefit_errors[j];
  }
  double Constraint(int j) const {
    if (!r_.constrained[j] || !(r_.prefit_errors[j] > 0)) return kNaN;
    return r_.errors[j] / r_.prefit_errors[j];
  }

  // ---- Summary.
  std::string Summary() {
    Section("summary");
    std::string s = "<section id=\"summary\"><h2>Summary</h2><table class=\"kv\">";
    auto row = [&](const std::string& k, const std::string& v) {
      s += "<tr><th>" + H(k) + "</th><td>" + v + "</td></tr>";
    };
    row("Input", H(r_.input.empty() ? "-" : r_.input));
    std::string data = r_.data == "observed" ? "observed data" : r_.data;
    row("Data", H(data));
    const bool ok = r_.status == "converged";
    row("Status", "<span class=\"" + std::string(ok ? "ok" : "bad") + "\">" + H(r_.status) +
                      "</span>" + (r_.message.empty() ? "" : " &middot; " + H(r_.message)));
    row("NLL at the minimum", H(FormatNumber(r_.nll, 10)));
    row("EDM", H(FormatNumber(r_.edm, 3)));
    row("Iterations", std::to_string(r_.iterations) +
                          (summary_.contains("evaluations")
                               ? " (" + summary_["evaluations"].dump() + " evaluations)"
                               : ""));
    const bool cov_ok = r_.covariance_status == "accurate";
    row("Covariance",
        "<span class=\"" + std::string(cov_ok ? "ok" : "bad") + "\">" + H(r_.covariance_status) +
            "</span>" +
            (r_.covariance_message.empty() ? "" : " &middot; " + H(r_.covariance_message)));
    row("Saturated goodness of fit", "χ² / ndf = " + H(FormatNumber(r_.gof_chi2, 5)) + " / " +
                                         std::to_string(r_.gof_ndf) +
                                         ", p = " + H(FormatNumber(r_.gof_p, 3)));
    if (!r_.likelihood.empty()) row("Likelihood", H(r_.likelihood));
    if (summary_.contains("model") && summary_["model"].is_object()) {
      const auto& m = summary_["model"];
      auto get = [&](const char* k) { return m.contains(k) ? m[k].dump() : std::string("-"); };
      row("Model",
          H(get("nbins") + " fitted bins (" + get("nbins_full") + " in all), " + get("processes") +
            " processes, " + get("systematics") + " systematics, " + get("pois") + " POIs; " +
            (m.contains("systematic_type") && m["systematic_type"].is_string()
                 ? m["systematic_type"].get<std::string>()
                 : std::string()) +
            (m.value("asymmetric", false) ? ", asymmetric" : "")));
    }
    row("Parameters", std::to_string(r_.num_params()));
    if (summary_.contains("timings") && summary_["timings"].is_object()) {
      std::string t;
      for (const char* k : {"total", "evaluation", "linear_algebra", "covariance"})
        if (summary_["timings"].contains(k) && summary_["timings"][k].is_number())
          t += (t.empty() ? "" : ", ") + std::string(k) + " " +
               FormatNumber(summary_["timings"][k].get<double>(), 3) + " s";
      row("Fit time", H(t));
    }
    if (summary_.contains("threads") && summary_["threads"].is_number())
      row("Threads", H(summary_["threads"].dump() +
                       (summary_["threads"].get<int>() == 0 ? " (all cores)" : "")));
    if (summary_.contains("command_line") && summary_["command_line"].is_string() &&
        !summary_["command_line"].get<std::string>().empty())
      row("Command", "<code>" + H(summary_["command_line"].get<std::string>()) + "</code>");
    row("lepus version", H(r_.lepus_version));
    s += "</table>";
    if (!r_.channel_gof.empty()) {
      s += "<h3>Goodness of fit per channel (saturated)</h3><table><tr><th>channel</th><th "
           "class=\"n\">χ²</th>"
           "<th class=\"n\">bins</th><th class=\"n\">p</th></tr>";
      for (const auto& g : r_.channel_gof)
        s += "<tr><td>" + H(g.name) + "</td><td class=\"n\">" + H(FormatNumber(g.chi2, 5)) +
             "</td><td class=\"n\">" + std::to_string(g.ndf) + "</td><td class=\"n\">" +
             H(FormatNumber(g.p, 3)) + "</td></tr>";
      s += "</table>";
    }
    return s + "</section>\n";
  }

  // ---- POIs and NOIs.
  std::string Pois() {
    const auto targets = Targets();
    if (targets.empty()) return "";
    Section("pois");
    std::string s =
        "<section id=\"pois\"><h2>Parameters of "
        "interest</h2><table><tr><th>parameter</th><th>kind</th>"
        "<th class=\"n\">fitted value</th><th class=\"n\">in physical units</th><th "
        "class=\"n\">prefit</th>";
    const bool has_iv = !r_.intervals.empty();
    if (has_iv) s += "<th class=\"n\">profile-likelihood intervals</th>";
    s += "</tr>";
    for (int i : targets) {
      const double sc = r_.scales[i];
      std::string phys = "-";
      if (Finite(sc) && sc != 0.0)
        phys = ValueError(r_.values[i] * sc, r_.errors[i] * std::abs(sc)) + " " + r_.units[i];
      s += "<tr><td>" + H(r_.names[i]) + "</td><td>" + H(r_.kinds[i]) + "</td><td class=\"n\">" +
           H(ValueError(r_.values[i], r_.errors[i])) + "</td><td class=\"n\">" + H(phys) +
           "</td><td class=\"n\">" + H(FormatNumber(r_.prefit[i], 4)) + "</td>";
      if (has_iv) {
        std::string iv;
        for (const auto& v : r_.intervals)
          if (v.param_index == i)
            iv += (iv.empty() ? "" : "<br>") + H(FormatNumber(v.cl * 100, 3)) + "%: [" +
                  H(FormatNumber(v.lo, 5)) + (v.lo_found ? "" : "?") + ", " +
                  H(FormatNumber(v.hi, 5)) + (v.hi_found ? "" : "?") + "]";
        s += "<td class=\"n\">" + (iv.empty() ? "-" : iv) + "</td>";
      }
      s += "</tr>";
    }
    s += "</table>";
    if (has_iv)
      s += "<p class=\"note\">\"?\": the end of the interval was not found (domain boundary or "
           "search limit).</p>";
    return s + "</section>\n";
  }

  // ---- Pulls and impacts, grouped impacts.
  std::string Impacts() {
    const auto& im = r_.impacts;
    const int npar = r_.num_params();
    std::string s = "<section id=\"impacts\"><h2>Pulls and impacts</h2>";
    Section("impacts");
    const int top = opt_.top;
    std::vector<int> shown_targets;  // impact target rows (k) with a parameter
    if (im) {
      for (std::size_t k = 0; k < im->targets.size(); ++k)
        shown_targets.push_back(static_cast<int>(k));
    }
    if (!im || shown_targets.empty()) {
      report_.notes.push_back(
          "impacts: the results file has none (run lepus fit with --impacts or --global-impacts); "
          "the chart ranks the nuisances by |pull|");
      std::vector<int> idx;
      for (int j = 0; j < npar; ++j)
        if (Finite(Pull(j))) idx.push_back(j);
      std::stable_sort(idx.begin(), idx.end(),
                       [&](int a, int b) { return std::abs(Pull(a)) > std::abs(Pull(b)); });
      if (static_cast<int>(idx.size()) > top) idx.resize(static_cast<std::size_t>(top));
      PullImpactChart c;
      c.title = "Pulls of the " + std::to_string(idx.size()) + " nuisances with the largest |pull|";
      c.has_impacts = false;
      for (int j : idx) c.rows.push_back({r_.names[j], Pull(j), Constraint(j), kNaN, kNaN, ""});
      s += "<p class=\"note\">Pull = (θ̂ − θ₀) / Δθ_prefit with the post-fit constraint Δθ̂ / "
           "Δθ_prefit as error bar.</p>";
      if (!c.rows.empty()) s += Plot("pulls", RenderPullImpactChart(c));
    } else {
      s += "<p class=\"note\">Ranked by |nominal impact| (the top " + std::to_string(top) +
           "); the impact of a nuisance on a target is the shift of the target when the nuisance "
           "moves by its post-fit "
           "uncertainty, with the other parameters profiled (C<sub>ij</sub> / √C<sub>jj</sub>)" +
           std::string(im->has_global ? "; global impacts propagate the nuisance's global "
                                        "observable (its constraint centre)"
                                      : "") +
           ". Pull = (θ̂ − θ₀) / Δθ_prefit, error bar = Δθ̂ / Δθ_prefit. Hover a bar or a name for "
           "numbers.</p>";
      for (int k : shown_targets) {
        const int ti = im->target_index[k];
        std::vector<int> idx;
        for (int j = 0; j < npar; ++j)
          if (j != ti && !r_.frozen[j] && Finite(im->nominal(k, j))) idx.push_back(j);
        std::stable_sort(idx.begin(), idx.end(), [&](int a, int b) {
          return std::abs(im->nominal(k, a)) > std::abs(im->nominal(k, b));
        });
        if (static_cast<int>(idx.size()) > top) idx.resize(static_cast<std::size_t>(top));
        PullImpactChart c;
        const std::string& tname = im->targets[k];
        const std::string unit = im->units[k];
        c.title = "Impacts on " + tname + " (total ±" + FormatNumber(im->total[k], 3) +
                  (unit.empty() ? "" : " " + unit) + "): top " + std::to_string(idx.size());
        c.unit = unit;
        c.has_global = im->has_global;
        for (int j : idx) {
          const double g = im->has_global && r_.constrained[j] && r_.kinds[j] != "poi"
                               ? im->global_nuisance(k, j)
                               : kNaN;
          c.rows.push_back({r_.names[j], Pull(j), Constraint(j), im->nominal(k, j), g,
                            "value " + ValueError(r_.values[j], r_.errors[j]) + " (prefit " +
                                FormatNumber(r_.prefit[j], 3) + " ± " +
                                FormatNumber(r_.prefit_errors[j], 3) + ")"});
        }
        s += "<h3>" + H(tname) + "</h3>";
        s += Plot("impacts_" + tname, RenderPullImpactChart(c));
      }
    }
    s += ParameterTable();
    s += "</section>\n";
    if (im && !im->group_names.empty()) s += Grouped();
    return s;
  }

  // Every parameter, searchable (script above).
  std::string ParameterTable() {
    const auto& im = r_.impacts;
    const int npar = r_.num_params();
    Json d;
    d["names"] = r_.names;
    d["kind"] = r_.kinds;
    Json pull = Json::array(), constr = Json::array(), value = Json::array(), error = Json::array();
    for (int j = 0; j < npar; ++j) {
      pull.push_back(Num(Pull(j)));
      constr.push_back(Num(Constraint(j)));
      value.push_back(Num(r_.values[j]));
      error.push_back(Num(r_.errors[j]));
    }
    d["pull"] = pull;
    d["constr"] = constr;
    d["value"] = value;
    d["error"] = error;
    Json nominal = Json::array(), global = Json::array();
    std::string options;
    if (im) {
      for (std::size_t k = 0; k < im->targets.size(); ++k) {
        const auto kk = static_cast<std::int64_t>(k);
        const int ti = im->target_index[k];
        Json n = Json::array(), g = Json::array();
        for (int j = 0; j < npar; ++j) {
          const bool src = j != ti && !r_.frozen[j];
          n.push_back(src ? Num(im->nominal(kk, j)) : Json(nullptr));
          if (im->has_global)
            g.push_back(src && r_.constrained[j] && r_.kinds[j] != "poi"
                            ? Num(im->global_nuisance(kk, j))
                            : Json(nullptr));
        }
        nominal.push_back(n);
        if (im->has_global) global.push_back(g);
        options += "<option value=\"" + std::to_string(k) + "\">" + H(im->targets[k]) +
                   (im->units[k].empty() ? "" : " [" + H(im->units[k]) + "]") + "</option>";
      }
    }
    d["nominal"] = nominal;
    d["global"] = global;
    std::string s =
        "<h3>All parameters</h3><div class=\"controls\">Search (regular expression): "
        "<input id=\"psearch\" type=\"search\" placeholder=\"e.g. pdf|muonScale\"> ";
    if (!options.empty()) s += " impacts on <select id=\"ptarget\">" + options + "</select>";
    s += " kind <select id=\"pkind\"><option "
         "value=\"\">all</option><option>poi</option><option>noi</option>"
         "<option>nuisance</option></select> <span id=\"pinfo\" class=\"note\"></span></div>";
    s += "<div class=\"scroll\"><table id=\"ptable\"><thead><tr><th class=\"s\" "
         "data-k=\"name\">parameter</th><th>kind</th>"
         "<th class=\"n\">value ± error</th><th class=\"n s\" data-k=\"pull\">pull</th><th></th>"
         "<th class=\"n s\" data-k=\"constr\">constraint</th>";
    if (im) s += "<th class=\"n s\" data-k=\"imp\">nominal impact</th><th></th>";
    if (im && im->has_global) s += "<th class=\"n s\" data-k=\"glob\">global impact</th><th></th>";
    s += "</tr></thead><tbody id=\"pbody\"></tbody></table></div>";
    s += "<script type=\"application/json\" id=\"pdata\">" + ScriptJson(d) + "</script>";
    return s;
  }

  std::string Grouped() {
    const auto& im = *r_.impacts;
    Section("grouped");
    std::string s =
        "<section id=\"grouped\"><h2>Grouped impacts</h2><p class=\"note\">Each row: the "
        "uncertainty of "
        "the target due to the group's nuisances (nominal: C restricted to the group; global: "
        "quadrature sum of "
        "the members' global impacts); <code>stat</code> is the data statistics, "
        "<code>binByBinStat</code> "
        "the simulation sample size. Sorted by nominal impact.</p>";
    const auto ng = static_cast<std::int64_t>(im.group_names.size());
    for (std::size_t k = 0; k < im.targets.size(); ++k) {
      const auto kk = static_cast<std::int64_t>(k);
      const std::string unit = im.units[k];
      std::vector<std::int64_t> order(static_cast<std::size_t>(ng));
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](std::int64_t a, std::int64_t b) {
        const double x = im.grouped_nominal(kk, a), y = im.grouped_nominal(kk, b);
        return (Finite(x) ? x : -1) > (Finite(y) ? y : -1);
      });
      s += "<h3>" + H(im.targets[k]) +
           "</h3><table><tr><th>Source of uncertainty</th><th class=\"n\">Impact" +
           (unit.empty() ? "" : " (" + H(unit) + ")") + ": Nominal</th>" +
           (im.has_global ? "<th class=\"n\">Global</th>" : "") + "</tr>";
      BarChart bc;
      bc.title = "Grouped impacts on " + im.targets[k];
      bc.xlabel = "impact" + (unit.empty() ? std::string() : " [" + unit + "]");
      BarSeries nom{"nominal", {}}, glo{"global", {}};
      int omitted = 0;
      for (std::int64_t g : order) {
        const double n = im.grouped_nominal(kk, g);
        // A group holding the target itself carries the whole uncertainty (as the CLI's table,
        // such a group is left out): its nominal impact equals the total.
        if (Finite(n) && Finite(im.total[k]) && n >= im.total[k] * (1 - 1e-9) && im.total[k] > 0) {
          ++omitted;
          continue;
        }
        const double gl = im.has_global ? im.grouped_global(kk, g) : kNaN;
        s += "<tr><td>" + H(im.group_names[static_cast<std::size_t>(g)]) + "</td><td class=\"n\">" +
             H(Fixed(n, Decimals(im.total[k]))) + "</td>" +
             (im.has_global ? "<td class=\"n\">" + H(Fixed(gl, Decimals(im.total[k]))) + "</td>"
                            : "") +
             "</tr>";
        bc.categories.push_back(im.group_names[static_cast<std::size_t>(g)]);
        nom.values.push_back(n);
        glo.values.push_back(gl);
      }
      s += "<tr><th>Total uncertainty</th><th class=\"n\">" +
           H(Fixed(im.total[k], Decimals(im.total[k]))) + "</th>" +
           (im.has_global
                ? "<th class=\"n\">" + H(Fixed(im.total[k], Decimals(im.total[k]))) + "</th>"
                : "") +
           "</tr></table>";
      if (omitted)
        s += "<p class=\"note\">" + std::to_string(omitted) + " group(s) containing " +
             H(im.targets[k]) + " itself left out.</p>";
      if (im.has_global && k < im.global_closure.size() && Finite(im.global_closure[k]))
        s += "<p class=\"note\">Global closure (sum of squared global impacts / total² − 1): " +
             H(FormatNumber(im.global_closure[k], 3)) + "</p>";
      bc.series.push_back(nom);
      if (im.has_global) bc.series.push_back(glo);
      s += Plot("grouped_impacts_" + im.targets[k], RenderBarChart(bc));
    }
    return s + "</section>\n";
  }

  static int Decimals(double total) {
    if (!Finite(total) || total <= 0) return 3;
    return std::clamp(2 - static_cast<int>(std::floor(std::log10(total))), 0, 6);
  }

  // ---- Distributions.
  ChannelData Prepare(const io::ResultsChannel& ch) const {
    ChannelData c;
    c.ch = &ch;
    c.axes = ch.axes;
    const engine::Channel* in = nullptr;
    for (const auto& ic : src_.input_channels)
      if (ic.name == ch.name) in = &ic;
    if (in && in->axes.size() == c.axes.size()) {
      for (std::size_t k = 0; k < c.axes.size(); ++k) {
        auto& a = c.axes[k];
        const auto& ia = in->axes[k];
        if (a.edges.empty() && !ia.edges.empty() && static_cast<int>(ia.edges.size()) == a.bins + 1)
          a.edges = ia.edges;
        if (a.labels.empty() && !ia.labels.empty() && static_cast<int>(ia.labels.size()) == a.bins)
          a.labels = ia.labels;
      }
    }
    std::int64_t product = c.axes.empty() ? 0 : 1;
    for (const auto& a : c.axes) product *= a.bins > 0 ? a.bins : 0;
    c.shaped = product == ch.nbins && ch.nbins > 0;
    if (!ch.masked && data_->size() >= static_cast<std::size_t>(ch.first_bin + ch.nbins))
      c.data.assign(data_->begin() + ch.first_bin, data_->begin() + ch.first_bin + ch.nbins);
    return c;
  }

  // A stack plot of a subset of a channel's bins (`bins`: indices into the channel).
  StackPlot StackOf(const io::ResultsYields& y, const ChannelData& c,
                    const std::vector<std::size_t>& bins) const {
    StackPlot p;
    const auto& ch = *c.ch;
    const int np = static_cast<int>(y.processes.size());
    if (!ch.process.empty()) {
      for (int k = np - 1; k >= 0; --k) {  // signals (listed first) end on top
        StackProcess sp{y.processes[static_cast<std::size_t>(k)], {}, ProcessColour(k)};
        double sum = 0;
        for (std::size_t b : bins) {
          const double v = ch.process(static_cast<std::int64_t>(b), k);
          sp.values.push_back(v);
          if (Finite(v)) sum += std::abs(v);
        }
        if (sum > 0) p.processes.push_back(std::move(sp));
      }
    }
    for (std::size_t b : bins) {
      p.total.push_back(ch.total[b]);
      p.total_error.push_back(ch.total_error[b]);
      if (!c.data.empty()) p.data.push_back(c.data[b]);
    }
    p.data_label = DataLabel();
    return p;
  }

  std::string DataLabel() const {
    if (r_.data == "asimov") return "Asimov data";
    if (r_.data.rfind("pseudodata:", 0) == 0) return "Pseudo-data " + r_.data.substr(11);
    return "Data";
  }

  std::string Distributions() {
    const io::ResultsYields* sets[2] = {r_.prefit_yields ? &*r_.prefit_yields : nullptr,
                                        r_.postfit_yields ? &*r_.postfit_yields : nullptr};
    if (!sets[0] && !sets[1]) {
      report_.notes.push_back(
          "pre-/post-fit distributions: the results file has no yields (run lepus fit with "
          "--postfit, "
          "or --report, which implies it)");
      return "";
    }
    Section("distributions");
    if (data_->empty())
      report_.notes.push_back(
          "data points: the results file does not hold the fitted data (written by an older lepus) "
          "and no fit input was read (--input)");
    std::string s =
        "<section id=\"distributions\"><h2>Pre- and post-fit distributions</h2><p class=\"note\">"
        "Stacked processes, " +
        H(DataLabel()) +
        " with Poisson errors √n, the hatched band is the total "
        "uncertainty of the prediction (pre-fit: the prior uncertainties and simulation "
        "statistics; post-fit: "
        "the fit covariance). Ratio panels: data / prediction.</p>";
    const io::ResultsYields& ref = sets[1] ? *sets[1] : *sets[0];
    for (std::size_t ci = 0; ci < ref.channels.size(); ++ci) {
      const auto& name = ref.channels[ci].name;
      s += "<h3>Channel " + H(name) + (ref.channels[ci].masked ? " (masked)" : "") + "</h3>";
      for (const io::ResultsYields* y : sets) {
        if (!y) continue;
        const io::ResultsChannel* ch = nullptr;
        for (const auto& c : y->channels)
          if (c.name == name) ch = &c;
        if (!ch) continue;
        s += ChannelPlots(*y, Prepare(*ch));
      }
      s += ProjectionPlots(sets, name);
    }
    return s + "</section>\n";
  }

  // The unrolled view (per charge when the channel has a charge axis) or the 1D distribution.
  std::string ChannelPlots(const io::ResultsYields& y, const ChannelData& c) {
    const auto& ch = *c.ch;
    const std::string set = y.postfit ? "postfit" : "prefit";
    const std::string Set = y.postfit ? "Post-fit" : "Pre-fit";
    std::string s;
    if (c.shaped && c.axes.size() == 1) {
      std::vector<std::size_t> bins(static_cast<std::size_t>(ch.nbins));
      std::iota(bins.begin(), bins.end(), 0);
      StackPlot p = StackOf(y, c, bins);
      p.edges = c.axes[0].edges;
      p.title = Set + ": " + ch.name;
      p.xlabel = AxisTitle(c.axes[0].name);
      return Plot(set + "_" + ch.name, RenderStack(p));
    }
    // Unrolled: split by charge when there is a charge axis and another axis.
    const auto shape = Shape(c);
    int qaxis = -1;
    if (c.shaped && c.axes.size() >= 2)
      for (std::size_t k = 0; k < c.axes.size(); ++k)
        if (IsChargeAxis(c.axes[k])) qaxis = static_cast<int>(k);
    const int nq = qaxis >= 0 ? shape[static_cast<std::size_t>(qaxis)] : 1;
    for (int q = 0; q < nq; ++q) {
      std::vector<std::size_t> bins;
      std::vector<double> separators;
      std::vector<std::string> sep_labels;
      // The slowest axis other than charge gives the separators.
      int slow = -1;
      if (c.shaped)
        for (std::size_t k = 0; k < c.axes.size(); ++k)
          if (static_cast<int>(k) != qaxis) {
            slow = static_cast<int>(k);
            break;
          }
      std::vector<int> idx(shape.size(), 0);
      int last_slow = -1;
      for (std::size_t b = 0; b < static_cast<std::size_t>(ch.nbins); ++b) {
        if (c.shaped) {
          std::size_t rem = b;
          for (int a = static_cast<int>(shape.size()) - 1; a >= 0; --a) {
            idx[static_cast<std::size_t>(a)] =
                static_cast<int>(rem % static_cast<std::size_t>(shape[a]));
            rem /= static_cast<std::size_t>(shape[a]);
          }
          if (qaxis >= 0 && idx[static_cast<std::size_t>(qaxis)] != q) continue;
          if (slow >= 0 && c.axes.size() >= 2 && idx[static_cast<std::size_t>(slow)] != last_slow) {
            if (last_slow >= 0) separators.push_back(static_cast<double>(bins.size()));
            last_slow = idx[static_cast<std::size_t>(slow)];
            sep_labels.push_back(BinLabel(c.axes[static_cast<std::size_t>(slow)], last_slow));
          }
        }
        bins.push_back(b);
      }
      StackPlot p = StackOf(y, c, bins);
      std::string axes_text;
      for (std::size_t k = 0; k < c.axes.size(); ++k)
        if (static_cast<int>(k) != qaxis)
          axes_text += (axes_text.empty() ? "" : " × ") + c.axes[k].name;
      p.title = Set + ": " + ch.name +
                (qaxis >= 0 ? ", " + ChargeLabel(c.axes[static_cast<std::size_t>(qaxis)], q) : "") +
                (c.shaped && c.axes.size() >= 2 ? " (unrolled " + axes_text + ")" : "");
      p.xlabel = c.shaped && c.axes.size() >= 2
                     ? "unrolled bin (" + axes_text + ", last axis fastest)"
                     : "bin";
      if (separators.size() <= 200) {
        p.separators = separators;
        p.separator_labels = sep_labels;
      }
      s += Plot(set + "_" + ch.name + "_unrolled" + (qaxis >= 0 ? "_q" + std::to_string(q) : ""),
                RenderStack(p));
    }
    return s;
  }

  // 1D projections per axis (and per charge) of a multi-dimensional channel, prefit | postfit.
  std::string ProjectionPlots(const io::ResultsYields* const sets[2], const std::string& name) {
    std::string s, cells;
    bool any = false, missing_band = false;
    const io::ResultsYields& ref = sets[1] ? *sets[1] : *sets[0];
    const io::ResultsChannel* refch = nullptr;
    for (const auto& c : ref.channels)
      if (c.name == name) refch = &c;
    if (!refch) return "";
    const ChannelData rc = Prepare(*refch);
    if (!rc.shaped || rc.axes.size() < 2) return "";
    const auto shape = Shape(rc);
    int qaxis = -1;
    for (std::size_t k = 0; k < rc.axes.size(); ++k)
      if (IsChargeAxis(rc.axes[k])) qaxis = static_cast<int>(k);
    struct View {
      int axis;
      int charge;  // -1: all charges
    };
    std::vector<View> views;
    for (int a = 0; a < static_cast<int>(rc.axes.size()); ++a) {
      if (a == qaxis) continue;
      views.push_back({a, -1});
      if (qaxis >= 0)
        for (int q = 0; q < shape[static_cast<std::size_t>(qaxis)]; ++q) views.push_back({a, q});
    }
    for (const View& v : views) {
      for (int si = 0; si < 2; ++si) {
        const io::ResultsYields* y = sets[si];
        if (!y) continue;
        const io::ResultsChannel* ch = nullptr;
        for (const auto& c : y->channels)
          if (c.name == name) ch = &c;
        if (!ch) continue;
        const ChannelData c = Prepare(*ch);
        std::vector<int> keep = {v.axis};
        if (v.charge >= 0) {
          keep.push_back(qaxis);
          std::sort(keep.begin(), keep.end());
        }
        std::vector<std::string> keep_names;
        for (int k : keep) keep_names.push_back(c.axes[static_cast<std::size_t>(k)].name);
        const io::ResultsProjection* fp = nullptr;
        for (const auto& p : y->projections)
          if (p.channel == name && p.axes == keep_names) fp = &p;
        const int na = shape[static_cast<std::size_t>(v.axis)];
        // Extracts the slice of the kept-axes array for the charge (or all of it).
        auto slice = [&](const std::vector<double>& arr) {
          if (v.charge < 0) return arr;
          std::vector<double> out;
          const auto nq = static_cast<std::size_t>(shape[static_cast<std::size_t>(qaxis)]);
          const auto q = static_cast<std::size_t>(v.charge);
          for (std::size_t i = 0; i < static_cast<std::size_t>(na); ++i)
            out.push_back(qaxis > v.axis ? arr[i * nq + q] : arr[q * na + i]);
          return out;
        };
        StackPlot p;
        const int np = static_cast<int>(y->processes.size());
        if (!ch->process.empty() || (fp && !fp->process.empty())) {
          for (int k = np - 1; k >= 0; --k) {
            std::vector<double> vals = fp && !fp->process.empty()
                                           ? Column(fp->process, k)
                                           : ProjectValues(Column(ch->process, k), shape, keep);
            vals = slice(vals);
            double sum = 0;
            for (double x : vals) sum += Finite(x) ? std::abs(x) : 0;
            if (sum > 0)
              p.processes.push_back(
                  {y->processes[static_cast<std::size_t>(k)], vals, ProcessColour(k)});
          }
        }
        p.total = slice(fp ? fp->values : ProjectValues(ch->total, shape, keep));
        if (fp)
          p.total_error = slice(fp->errors);
        else
          missing_band = true;
        if (!c.data.empty()) p.data = slice(ProjectValues(c.data, shape, keep));
        p.data_label = DataLabel();
        p.edges = c.axes[static_cast<std::size_t>(v.axis)].edges;
        p.xlabel = AxisTitle(c.axes[static_cast<std::size_t>(v.axis)].name);
        p.width = 680;
        p.height = 470;
        const std::string Set = y->postfit ? "Post-fit" : "Pre-fit";
        p.title =
            Set + ": " + name + " → " + c.axes[static_cast<std::size_t>(v.axis)].name +
            (v.charge >= 0 ? ", " + ChargeLabel(c.axes[static_cast<std::size_t>(qaxis)], v.charge)
                           : "");
        cells += "<div>" +
                 Plot(std::string(y->postfit ? "postfit" : "prefit") + "_" + name + "_" +
                          c.axes[static_cast<std::size_t>(v.axis)].name +
                          (v.charge >= 0 ? "_q" + std::to_string(v.charge) : ""),
                      RenderStack(p)) +
                 "</div>";
        any = true;
      }
    }
    if (!any) return "";
    s += "<details open><summary>Projections of " + H(name) + " onto each axis" +
         (qaxis >= 0 ? " (all charges and per charge)" : "") + "</summary>";
    if (missing_band)
      s += "<p class=\"note\">Projections without a band: their uncertainty needs the bin-to-bin "
           "correlations; "
           "run lepus fit with --project " +
           H(name) + ":AXIS (or --report, which adds them).</p>";
    s += "<div class=\"grid\">" + cells + "</div></details>";
    return s;
  }

  // ---- Correlations.
  std::string Correlations() {
    if (r_.correlation.empty()) {
      report_.notes.push_back(
          "correlation matrix: not in the results file (no covariance was computed)");
      return "";
    }
    Section("correlations");
    const int n = r_.num_params();
    const auto targets = Targets();
    std::vector<int> chosen = targets;
    std::vector<std::pair<double, int>> rank;
    for (int j = 0; j < n; ++j) {
      if (std::find(targets.begin(), targets.end(), j) != targets.end() || r_.frozen[j]) continue;
      double m = 0;
      if (!targets.empty()) {
        for (int t : targets) m = std::max(m, std::abs(r_.correlation(t, j)));
      } else {
        for (int i = 0; i < n; ++i)
          if (i != j) m = std::max(m, std::abs(r_.correlation(i, j)));
      }
      if (Finite(m)) rank.emplace_back(m, j);
    }
    std::stable_sort(rank.begin(), rank.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    for (const auto& [m, j] : rank) {
      if (static_cast<int>(chosen.size()) >= std::max(opt_.top, static_cast<int>(targets.size())))
        break;
      chosen.push_back(j);
    }
    Heatmap h;
    h.title = targets.empty() ? "Correlations of the " + std::to_string(chosen.size()) +
                                    " most correlated parameters"
                              : "Correlations: the POIs/NOIs and the " +
                                    std::to_string(chosen.size() - targets.size()) +
                                    " parameters most correlated with them";
    for (int i : chosen) h.names.push_back(r_.names[i]);
    for (int i : chosen)
      for (int j : chosen) h.values.push_back(r_.correlation(i, j));
    h.width = 1300;
    return "<section id=\"correlations\"><h2>Correlations</h2><p class=\"note\">Post-fit "
           "correlation coefficients; hover "
           "a cell for its value.</p>" +
           Plot("correlation", RenderHeatmap(h)) + "</section>\n";
  }

  // ---- Scans.
  std::string Scans() {
    if (r_.scans.empty() && r_.scans_2d.empty()) return "";
    Section("scans");
    std::string s = "<section id=\"scans\"><h2>Likelihood scans</h2><div class=\"grid\">";
    for (const auto& sc : r_.scans) {
      ScanPlot p;
      p.title = "Profile likelihood scan of " + sc.name;
      p.xlabel = sc.name;
      p.x = sc.values;
      for (double d : sc.dnll) p.two_dnll.push_back(2 * d);
      p.best = sc.best_value;
      double lo1, hi1, lo2, hi2;
      ScanCrossings(p.x, p.two_dnll, 1.0, &lo1, &hi1);
      ScanCrossings(p.x, p.two_dnll, 3.841, &lo2, &hi2);
      s += "<div>" + Plot("scan_" + sc.name, RenderScan(p)) + "<p class=\"note\">" + H(sc.name) +
           " = " + H(FormatNumber(sc.best_value, 5)) + "; 68%: [" + H(FormatNumber(lo1, 5)) + ", " +
           H(FormatNumber(hi1, 5)) + "], 95%: [" + H(FormatNumber(lo2, 5)) + ", " +
           H(FormatNumber(hi2, 5)) + "] (crossings of the scanned curve; " + "Hessian error " +
           H(FormatNumber(sc.hessian_error, 3)) + ")</p></div>";
    }
    for (const auto& sc : r_.scans_2d) {
      ContourPlot p;
      p.title = "2D scan: " + sc.name_x + " vs " + sc.name_y;
      p.xlabel = sc.name_x;
      p.ylabel = sc.name_y;
      p.x = sc.values_x;
      p.y = sc.values_y;
      for (double d : sc.dnll.values) p.two_dnll.push_back(2 * d);
      p.best_x = sc.best_x;
      p.best_y = sc.best_y;
      s += "<div>" + Plot("scan2d_" + sc.name_x + "_" + sc.name_y, RenderContour(p)) + "</div>";
    }
    return s + "</div></section>\n";
  }

  // ---- Toys.
  std::string Toys() {
    if (src_.toys.empty()) return "";
    Section("toys");
    std::string s = "<section id=\"toys\"><h2>Toys</h2>";
    for (const auto& t : src_.toys) {
      s += "<h3>" + H(Basename(t.path)) + "</h3><p class=\"note\">" + std::to_string(t.ntoys) +
           " toys (" + H(t.mode) + "), " + std::to_string(t.converged) +
           " converged. Pull = (fitted − true) / fitted error; a "
           "well-behaved fit gives mean 0 and width 1 "
           "(dashed).</p><table><tr><th>parameter</th><th class=\"n\">toys</th>"
           "<th class=\"n\">mean</th><th class=\"n\">width</th></tr>";
      for (std::size_t k = 0; k < t.pull_names.size(); ++k)
        s += "<tr><td>" + H(t.pull_names[k]) + "</td><td class=\"n\">" +
             std::to_string(t.pull_toys[k]) + "</td><td class=\"n\">" +
             H(FormatNumber(t.pull_mean[k], 3)) + "</td><td class=\"n\">" +
             H(FormatNumber(t.pull_width[k], 3)) + "</td></tr>";
      s += "</table><div class=\"grid\">";
      const std::size_t shown =
          std::min<std::size_t>(t.pull_names.size(), static_cast<std::size_t>(opt_.top));
      for (std::size_t k = 0; k < shown; ++k) {
        PullHistogram h;
        h.title = "Pulls of " + t.pull_names[k];
        h.values = Column(t.pulls, static_cast<std::int64_t>(k));
        h.width = 620;
        h.height = 380;
        s += "<div>" +
             Plot("toys_" + Basename(t.path) + "_" + t.pull_names[k], RenderPullHistogram(h)) +
             "</div>";
      }
      s += "</div>";
    }
    return s + "</section>\n";
  }

  const ReportSources& src_;
  const io::ResultsFile& r_;
  const ReportOptions& opt_;
  Json summary_;
  const std::vector<double>* data_ = nullptr;
  Report report_;
  std::set<std::string> used_files_;
};

}  // namespace

Report BuildReport(const ReportSources& sources, const ReportOptions& options) {
  if (options.top < 1)
    throw std::invalid_argument("--top is " + std::to_string(options.top) + ", but must be >= 1");
  return Builder(sources, options).Build();
}

Report WriteReport(const std::string& results_path, const std::string& input_path,
                   const std::vector<std::string>& toys_paths, const std::string& output,
                   const ReportOptions& options) {
  namespace fs = std::filesystem;
  ReportSources src;
  src.results = io::ReadResultsFile(results_path);
  for (const auto& t : toys_paths) src.toys.push_back(io::ReadToysFile(t));

  // The fit input: when given, or when the results lack the data or bin edges and the recorded
  // input exists (relative to the working directory, else to the results file's directory).
  bool lacks = src.results.data_fitted.empty();
  const std::optional<io::ResultsYields>* sets[2] = {&src.results.prefit_yields,
                                                     &src.results.postfit_yields};
  for (const auto* y : sets)
    if (*y)
      for (const auto& c : (*y)->channels)
        for (const auto& a : c.axes) lacks = lacks || (a.bins > 0 && a.edges.empty());
  std::string in = input_path;
  if (in.empty() && lacks && !src.results.input.empty() &&
      (src.results.prefit_yields || src.results.postfit_yields)) {
    std::error_code ec;
    if (fs::is_regular_file(src.results.input, ec)) {
      in = src.results.input;
    } else {
      const fs::path beside =
          fs::path(results_path).parent_path() / fs::path(src.results.input).filename();
      if (fs::is_regular_file(beside, ec)) in = beside.string();
    }
  }
  // A HistFactory workspace recorded as the input is not re-read: its channels have integer bins
  // only (nothing to add to the results' axes), and its data can depend on the workspace options
  // of the fit (patches, measurement), which the results do not record.
  if (input_path.empty() && !in.empty() && io::LooksLikeWorkspace(in)) in.clear();
  if (!in.empty()) {
    engine::Model m = io::ReadFitInput(in);
    src.input_path = in;
    src.input_channels = m.channels;
    const std::string& d = src.results.data;
    if (d.rfind("pseudodata:", 0) == 0) {
      const std::string name = d.substr(11);
      for (std::size_t i = 0; i < m.pseudodata_names.size(); ++i)
        if (m.pseudodata_names[i] == name) {
          const auto col = m.pseudodata.col(static_cast<Eigen::Index>(i));
          src.input_data.assign(col.data(), col.data() + col.size());
        }
    } else if (d != "asimov") {
      src.input_data.assign(m.data_obs.data(), m.data_obs.data() + m.data_obs.size());
    }
  }
  Report rep = BuildReport(src, options);
  if (!options.svg_dir.empty()) {
    std::error_code ec;
    fs::create_directories(options.svg_dir, ec);
    if (ec || !fs::is_directory(options.svg_dir))
      throw io::InputError("--svg-dir " + options.svg_dir + ": cannot create the directory" +
                           (ec ? " (" + ec.message() + ")" : std::string()));
    for (const auto& [file, svg] : rep.svgs)
      io::WriteFileAtomically((fs::path(options.svg_dir) / file).string(),
                              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + svg + "\n");
  }
  io::WriteFileAtomically(output, rep.html);
  return rep;
}

}  // namespace lepus::report
