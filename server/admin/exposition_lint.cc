#include "server/admin/exposition_lint.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace amaters::server {
namespace {

bool IsMetricNameStart(char c) { return absl::ascii_isalpha(c) || c == '_' || c == ':'; }
bool IsMetricNameChar(char c) { return IsMetricNameStart(c) || absl::ascii_isdigit(c); }
bool IsLabelNameStart(char c) { return absl::ascii_isalpha(c) || c == '_'; }
bool IsLabelNameChar(char c) { return IsLabelNameStart(c) || absl::ascii_isdigit(c); }

bool ValidMetricName(absl::string_view name) {
  if (name.empty() || !IsMetricNameStart(name[0])) return false;
  return std::all_of(name.begin(), name.end(), IsMetricNameChar);
}

// Go's strconv.ParseFloat as Prometheus uses it: decimal or "+Inf"/"-Inf"/"Inf"/"NaN".
bool ParseValue(absl::string_view text, double* value) {
  if (text == "+Inf" || text == "Inf") {
    *value = std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "-Inf") {
    *value = -std::numeric_limits<double>::infinity();
    return true;
  }
  if (text == "NaN") {
    *value = std::numeric_limits<double>::quiet_NaN();
    return true;
  }
  if (text.empty() || absl::ascii_isalpha(text.back())) return false;  // "inf", "nan", "1e"
  return absl::SimpleAtod(text, value);
}

struct FamilyState {
  std::string type;  // empty until its # TYPE line
  bool has_help = false;
  bool has_samples = false;
  bool closed = false;  // another family's lines came after this one's
  bool reported_missing = false;
};

struct HistogramSeries {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative count)
  bool has_sum = false;
  bool has_count = false;
  double count = 0;
};

class Linter {
 public:
  explicit Linter(const absl::flat_hash_set<std::string>& counters_without_total)
      : counters_without_total_(counters_without_total) {}

  std::vector<std::string> Run(absl::string_view text) {
    if (!text.empty() && text.back() != '\n') Problem(0, "exposition does not end with a newline");
    int line_number = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_number;
      if (line.empty()) continue;
      if (line[0] == '#') {
        Comment(line_number, line);
      } else {
        Sample(line_number, line);
      }
    }
    CheckHistograms();
    return std::move(problems_);
  }

 private:
  void Problem(int line, absl::string_view what) {
    problems_.push_back(line > 0 ? absl::StrCat("line ", line, ": ", what) : std::string(what));
  }

  // Makes `family` the current one, checking that its lines are contiguous.
  void Enter(int line, const std::string& family) {
    if (family == current_) return;
    if (!current_.empty()) families_[current_].closed = true;
    current_ = family;
    if (families_[family].closed) {
      Problem(line, absl::StrCat("family ", family, " is not contiguous (its lines are split by "
                                 "another family's)"));
    }
  }

  void Comment(int line, absl::string_view text) {
    std::vector<absl::string_view> parts = absl::StrSplit(text, absl::MaxSplits(' ', 3));
    if (parts.size() < 3 || parts[0] != "#" || (parts[1] != "HELP" && parts[1] != "TYPE")) {
      return;  // a plain comment
    }
    const std::string name(parts[2]);
    const absl::string_view rest = parts.size() > 3 ? parts[3] : absl::string_view();
    if (!ValidMetricName(name)) Problem(line, absl::StrCat("invalid metric name \"", name, "\""));
    Enter(line, name);
    FamilyState& family = families_[name];
    if (family.has_samples) {
      Problem(line, absl::StrCat("# ", parts[1], " for ", name, " after its samples"));
    }
    if (parts[1] == "HELP") {
      if (family.has_help) Problem(line, absl::StrCat("second # HELP for ", name));
      family.has_help = true;
      if (absl::StripAsciiWhitespace(rest).empty()) {
        Problem(line, absl::StrCat(name, " has an empty # HELP text"));
      }
      for (std::size_t i = 0; i < rest.size(); ++i) {
        if (rest[i] != '\\') continue;
        if (i + 1 >= rest.size() || (rest[i + 1] != '\\' && rest[i + 1] != 'n')) {
          Problem(line, absl::StrCat("invalid escape in # HELP for ", name));
          break;
        }
        ++i;
      }
      return;
    }
    if (!family.type.empty()) Problem(line, absl::StrCat("second # TYPE for ", name));
    const std::string type(rest);
    if (type != "counter" && type != "gauge" && type != "histogram" && type != "summary" &&
        type != "untyped") {
      Problem(line, absl::StrCat("unknown type \"", type, "\" for ", name));
      return;
    }
    family.type = type;
    if (type == "counter" && !absl::EndsWith(name, "_total") &&
        !counters_without_total_.contains(name)) {
      Problem(line, absl::StrCat(name, " counter metrics should have \"_total\" suffix"));
    }
    if (type == "counter" || type == "gauge") {
      for (absl::string_view suffix : {"_count", "_sum", "_bucket"}) {
        if (absl::EndsWith(name, suffix)) {
          Problem(line, absl::StrCat(name, " non-histogram and non-summary metrics should not "
                                     "have \"", suffix, "\" suffix"));
        }
      }
    }
  }

  // The family a sample name belongs to: the name itself, or for histograms and summaries the
  // name without its _bucket/_sum/_count suffix.
  std::string FamilyOf(const std::string& name, std::string* suffix) const {
    suffix->clear();
    auto it = families_.find(name);
    if (it != families_.end() && it->second.type != "histogram") return name;
    for (absl::string_view s : {"_bucket", "_sum", "_count"}) {
      if (!absl::EndsWith(name, s)) continue;
      const std::string base = name.substr(0, name.size() - s.size());
      auto b = families_.find(base);
      if (b == families_.end()) continue;
      if (b->second.type == "histogram" || (b->second.type == "summary" && s != "_bucket")) {
        *suffix = std::string(s);
        return base;
      }
    }
    return name;
  }

  void Sample(int line, absl::string_view text) {
    std::size_t pos = 0;
    while (pos < text.size() && IsMetricNameChar(text[pos])) ++pos;
    const std::string name(text.substr(0, pos));
    if (!ValidMetricName(name)) {
      Problem(line, absl::StrCat("invalid metric name in \"", text, "\""));
      return;
    }
    std::map<std::string, std::string> labels;
    if (pos < text.size() && text[pos] == '{') {
      ++pos;
      if (!ParseLabels(line, text, &pos, &labels)) return;
    }
    if (pos >= text.size() || text[pos] != ' ') {
      Problem(line, absl::StrCat("expected a space before the value in \"", text, "\""));
      return;
    }
    std::vector<absl::string_view> fields =
        absl::StrSplit(text.substr(pos), ' ', absl::SkipEmpty());
    double value = 0;
    if (fields.empty() || fields.size() > 2 || !ParseValue(fields[0], &value)) {
      Problem(line, absl::StrCat("invalid value in \"", text, "\""));
      return;
    }
    int64_t timestamp = 0;
    if (fields.size() == 2 && !absl::SimpleAtoi(fields[1], &timestamp)) {
      Problem(line, absl::StrCat("invalid timestamp in \"", text, "\""));
    }

    std::string suffix;
    const std::string family_name = FamilyOf(name, &suffix);
    Enter(line, family_name);
    FamilyState& family = families_[family_name];
    family.has_samples = true;
    if ((family.type.empty() || !family.has_help) && !family.reported_missing) {
      family.reported_missing = true;
      if (family.type.empty()) {
        Problem(line, absl::StrCat(family_name, " has samples but no # TYPE before them"));
      }
      if (!family.has_help) {
        Problem(line, absl::StrCat(family_name, " has samples but no # HELP before them"));
      }
    }

    std::vector<std::string> rendered;
    for (const auto& [k, v] : labels) rendered.push_back(absl::StrCat(k, "=\"", v, "\""));
    const std::string series_key = absl::StrCat(name, "{", absl::StrJoin(rendered, ","), "}");
    if (!series_.insert(series_key).second) {
      Problem(line, absl::StrCat("duplicate series ", series_key));
    }

    if (family.type == "counter" && !(value >= 0)) {
      Problem(line, absl::StrCat("counter ", series_key, " has a negative or NaN value"));
    }
    if (family.type == "histogram") HistogramSample(line, family_name, suffix, labels, value);
  }

  bool ParseLabels(int line, absl::string_view text, std::size_t* pos,
                   std::map<std::string, std::string>* labels) {
    std::size_t& p = *pos;
    while (true) {
      if (p < text.size() && text[p] == '}') {
        ++p;
        return true;
      }
      const std::size_t start = p;
      if (p >= text.size() || !IsLabelNameStart(text[p])) {
        Problem(line, absl::StrCat("invalid label name in \"", text, "\""));
        return false;
      }
      while (p < text.size() && IsLabelNameChar(text[p])) ++p;
      const std::string label(text.substr(start, p - start));
      if (absl::StartsWith(label, "__")) {
        Problem(line, absl::StrCat("reserved label name ", label, " in \"", text, "\""));
      }
      if (p + 1 >= text.size() || text[p] != '=' || text[p + 1] != '"') {
        Problem(line, absl::StrCat("expected =\" after label ", label, " in \"", text, "\""));
        return false;
      }
      p += 2;
      std::string value;
      bool closed = false;
      while (p < text.size()) {
        const char c = text[p++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (p >= text.size() || (text[p] != '\\' && text[p] != '"' && text[p] != 'n')) {
            Problem(line, absl::StrCat("invalid escape in label ", label, " in \"", text, "\""));
            return false;
          }
          value.push_back(text[p] == 'n' ? '\n' : text[p]);
          ++p;
          continue;
        }
        value.push_back(c);
      }
      if (!closed) {
        Problem(line, absl::StrCat("unterminated label value in \"", text, "\""));
        return false;
      }
      if (!labels->emplace(label, value).second) {
        Problem(line, absl::StrCat("label ", label, " twice in \"", text, "\""));
      }
      if (p < text.size() && text[p] == ',') ++p;
    }
  }

  void HistogramSample(int line, const std::string& family, const std::string& suffix,
                       std::map<std::string, std::string> labels, double value) {
    if (suffix.empty()) {
      Problem(line, absl::StrCat("histogram ", family, " has a sample without "
                                 "_bucket/_sum/_count suffix"));
      return;
    }
    std::string le;
    if (suffix == "_bucket") {
      auto it = labels.find("le");
      if (it == labels.end()) {
        Problem(line, absl::StrCat(family, "_bucket without an le label"));
        return;
      }
      le = it->second;
      labels.erase(it);
    }
    std::vector<std::string> rendered;
    for (const auto& [k, v] : labels) rendered.push_back(absl::StrCat(k, "=", v));
    HistogramSeries& h = histograms_[{family, absl::StrJoin(rendered, ",")}];
    if (suffix == "_bucket") {
      double bound = 0;
      if (!ParseValue(le, &bound) || std::isnan(bound)) {
        Problem(line, absl::StrCat(family, "_bucket has an invalid le=\"", le, "\""));
        return;
      }
      h.buckets.emplace_back(bound, value);
    } else if (suffix == "_sum") {
      h.has_sum = true;
    } else {
      h.has_count = true;
      h.count = value;
    }
  }

  void CheckHistograms() {
    for (auto& [key, h] : histograms_) {
      const std::string where = absl::StrCat(key.first, "{", key.second, "}");
      if (!h.has_sum) Problem(0, absl::StrCat("histogram ", where, " has no _sum"));
      if (!h.has_count) Problem(0, absl::StrCat("histogram ", where, " has no _count"));
      if (h.buckets.empty() || !std::isinf(h.buckets.back().first)) {
        Problem(0, absl::StrCat("histogram ", where, " does not end with an le=\"+Inf\" bucket"));
        continue;
      }
      for (std::size_t i = 1; i < h.buckets.size(); ++i) {
        if (!(h.buckets[i].first > h.buckets[i - 1].first)) {
          Problem(0, absl::StrCat("histogram ", where, " buckets are not in increasing le order"));
        }
        if (h.buckets[i].second < h.buckets[i - 1].second) {
          Problem(0, absl::StrCat("histogram ", where, " buckets are not cumulative"));
        }
      }
      if (h.has_count && h.buckets.back().second != h.count) {
        Problem(0, absl::StrCat("histogram ", where, " le=\"+Inf\" bucket ",
                                h.buckets.back().second, " != _count ", h.count));
      }
    }
  }

  const absl::flat_hash_set<std::string>& counters_without_total_;
  std::vector<std::string> problems_;
  absl::flat_hash_map<std::string, FamilyState> families_;
  std::string current_;
  absl::flat_hash_set<std::string> series_;
  std::map<std::pair<std::string, std::string>, HistogramSeries> histograms_;
};

}  // namespace

std::vector<std::string> LintExposition(
    absl::string_view text, const absl::flat_hash_set<std::string>& counters_without_total) {
  return Linter(counters_without_total).Run(text);
}

}  // namespace amaters::server
